// Backup/Restore (admin and support; the reference guide's Admin > Maintenance > Backup/Restore
// System Settings): create an archive with a passphrase and watch its progress, then download
// it; the archives kept on this appliance (download, verify, delete); the schedule (time of day,
// retention, passphrase, an SFTP copy off the box); and restore: upload an archive, see what it
// holds, confirm, follow the restore across the appliance's restart, and afterwards go back to
// the database it replaced or discard that.

import {
  busy, confirmAction, el, field, formatDateTime, messageBox, table, uniqueId,
} from '../lib/ui.js';
import {
  cardTable, checkPassphrasePair, details, ensureAdminCss, formatBytes, pageTimers, progressBar, reasonOf, rowActions,
  sentence,
} from '../lib/admin.js';
import { browserTimeZone, timeZones } from '../lib/time.js';
import { uploadShowingProgress } from '../lib/upload.js';

const MIN_PASSPHRASE = 12; // the server's rule (BackupService::kMinPassphrase)
const POLL_MS = 1500;

const BACKUP_PHASES = {
  dump: 'Dumping the database',
  archive: 'Encrypting and writing the archive',
  copy: 'Copying the archive off the appliance',
  complete: 'Finished',
};

// The journal's steps (restore_service.cc), each named once it is done.
const RESTORE_STEPS = {
  verifying: 'Checking the archive',
  extracted: 'Archive checked',
  confirmed: 'Started',
  'db-created': 'New database created; loading the archive\'s data',
  'db-loaded': 'Data loaded; migrating it to this version',
  migrated: 'Data migrated to this version',
  'licence-carried': 'This server\'s serial number and licence carried over',
  'conferences-decided': 'Live conferences checked',
  staged: 'Configuration and keys staged',
  ready: 'Ready to switch over',
  'conferences-ended': 'Switching over: the appliance restarts',
  'previous-recorded': 'The replaced database is kept',
  'pointer-switched': 'Switched over',
  done: 'Finished',
};

const COUNT_LABELS = {
  conferences: 'Conferences', cdrs: 'Conference CDRs', participant_cdrs: 'Participant CDRs', users: 'Users',
};

const phrase = (table_, key) => table_[key] ?? String(key ?? '').replaceAll('_', ' ');

export default {
  path: '/backups',
  title: 'Backup/Restore',
  roles: ['admin', 'support'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const { api } = ctx;
    const zone = browserTimeZone();
    const when = (iso) => formatDateTime(iso, zone, { zoneName: true });
    let disposed = false;
    const timers = pageTimers();
    const { later } = timers;

    // ---- create -------------------------------------------------------------------------------
    const createHeadingId = uniqueId('create-heading');
    const pass1 = field({
      label: 'Passphrase', id: 'backup-passphrase', type: 'password', autocomplete: 'new-password',
      hint: `At least ${MIN_PASSPHRASE} characters. The archive holds this server's private keys, so it is `
        + 'encrypted with this passphrase; without it the archive cannot be restored. Keep it apart from the file.',
    });
    const pass2 = field({ label: 'Repeat the passphrase', id: 'backup-passphrase-again', type: 'password', autocomplete: 'new-password' });
    const createButton = el('button', { type: 'submit', class: 'primary' }, 'Create backup');
    const createProgress = progressBar('Backup progress');
    const createError = messageBox('alert');
    const createStatus = messageBox('status');
    const createDownload = el('p', { hidden: true });
    const createForm = el('form', { class: 'stack', 'aria-labelledby': createHeadingId, novalidate: true },
      pass1, pass2, el('div', { class: 'actions' }, createButton), createProgress, createError, createStatus,
      createDownload);
    let watching = null; // the id of the backup whose progress the form shows

    // ---- list ---------------------------------------------------------------------------------
    const listHeadingId = uniqueId('list-heading');
    const listError = messageBox('alert');
    const listStatus = messageBox('status');
    const rowState = new Map(); // id -> {verifyOpen, message, error}
    let backups = [];
    const archiveTable = cardTable(table({
      caption: 'Archives on this appliance, newest first',
      hideCaption: true,
      empty: 'No backup archive is kept on this appliance yet.',
      rowKey: (b) => b.id,
      columns: [
        { key: 'created_at', label: 'Created', render: (b) => when(b.created_at) },
        { key: 'size', label: 'Size', class: 'num', render: (b) => formatBytes(b.size) },
        { key: 'origin', label: 'Origin', render: (b) => (b.origin === 'scheduled' ? 'Scheduled' : `${b.origin === 'pre-upgrade' ? 'Before an upgrade' : 'Manual'}${b.created_by ? ` (${b.created_by})` : ''}`) },
        { key: 'version', label: 'Version', render: (b) => b.product_version },
        { key: 'copy', label: 'Off-box copy', render: copyCell },
        { key: 'actions', label: 'Actions', class: 'adm-actions-cell adm-wide', render: actionsCell },
      ],
    }));
    const actions = rowActions(() => archiveTable.update(backups), (b) => b.id, (b) => when(b.created_at));

    function copyCell(b) {
      const copy = b.copy ?? {};
      if (!copy.state || copy.state === 'none') return 'Not copied';
      if (copy.state === 'copied') {
        return el('span', { class: 'adm-cell-stack' }, el('span', { class: 'badge up' }, 'Copied'),
          el('span', { class: 'adm-note adm-break' }, `${copy.target ?? ''}${copy.copied_at ? `, ${when(copy.copied_at)}` : ''}`));
      }
      if (copy.state === 'failed') {
        return el('span', { class: 'adm-cell-stack' }, el('span', { class: 'badge failed' }, 'Copy failed'),
          el('span', { class: 'adm-note adm-break' }, sentence(copy.error)));
      }
      return el('span', { class: 'badge' }, phrase({ copying: 'Copying', pending: 'Waiting to copy' }, copy.state));
    }

    function actionsCell(b) {
      const state = rowState.get(b.id) ?? {};
      const download = el('a', {
        class: 'button small', href: api.downloadUrl(`/backups/${encodeURIComponent(b.id)}/download`), download: b.file ?? `${b.id}.vcrmbak`,
      }, 'Download', el('span', { class: 'sr-only' }, ` ${when(b.created_at)}`));
      const buttons = el('div', { class: 'adm-row-actions' },
        download,
        actions.button(b, 'verify', 'Verify', () => {
          rowState.set(b.id, { ...state, verifyOpen: !state.verifyOpen, message: '', error: '' });
          archiveTable.update(backups);
          if (!state.verifyOpen) main.querySelector(`[data-verify-for="${CSS.escape(b.id)}"]`)?.focus();
        }),
        actions.button(b, 'restore', 'Restore', () => restoreFromList(b)),
        actions.button(b, 'delete', 'Delete', (row, key) => removeBackup(row, key), 'danger'));
      let verifyForm = null;
      if (state.verifyOpen) {
        const input = el('input', {
          type: 'password', id: uniqueId('verify-pass'), autocomplete: 'off', dataset: { verifyFor: b.id },
        });
        const label = el('label', { for: input.id }, 'Passphrase of this archive');
        const go = el('button', { type: 'submit', class: 'small primary' }, 'Check the archive');
        verifyForm = el('form', { class: 'adm-verify', novalidate: true }, label, input, go);
        verifyForm.addEventListener('submit', (event) => {
          event.preventDefault();
          verify(b, input.value, go);
        });
      }
      return el('div', { class: 'adm-cell-stack' }, buttons, verifyForm,
        state.message ? el('p', { class: 'adm-note', role: 'status' }, state.message) : null,
        state.error ? el('p', { class: 'adm-row-error message error', role: 'alert' }, state.error) : null);
    }

    async function verify(b, passphrase, button) {
      if (!passphrase) {
        rowState.set(b.id, { verifyOpen: true, error: 'Enter the passphrase the archive was made with.' });
        archiveTable.update(backups);
        return;
      }
      await busy(button, async () => {
        try {
          await api.post(`/backups/${encodeURIComponent(b.id)}/verify`, { passphrase });
          if (disposed) return;
          const text = `The archive of ${when(b.created_at)} is sound: every member and authentication tag checks out.`;
          rowState.set(b.id, { verifyOpen: false, message: text });
          ctx.announce(text);
        } catch (error) {
          if (disposed) return;
          rowState.set(b.id, { verifyOpen: true, error: `The archive did not verify: ${sentence(error.message)}` });
        }
        archiveTable.update(backups);
      });
    }

    async function removeBackup(b, key) {
      const yes = await confirmAction({
        title: 'Delete this backup archive?',
        message: `The archive of ${when(b.created_at)} (${formatBytes(b.size)}) is removed from this appliance. `
          + 'Copies you downloaded or that were copied off the appliance are not touched.',
        confirmLabel: 'Delete archive',
      });
      if (!yes) return;
      await actions.work(key, async () => {
        try {
          await api.del(`/backups/${encodeURIComponent(b.id)}`);
          if (disposed) return;
          listStatus.show(`The archive of ${when(b.created_at)} was deleted.`);
          await loadBackups();
        } catch (error) {
          if (!disposed) rowState.set(b.id, { error: `The archive was not deleted: ${sentence(error.message)}` });
        }
      });
    }

    // ---- schedule -----------------------------------------------------------------------------
    // GET/PUT /backups/schedule: secrets are write-only (the answer says only whether one is
    // set), and a PUT changes the fields it carries, so an empty secret field keeps the stored one.
    const scheduleHeadingId = uniqueId('schedule-heading');
    const sEnabled = field({ label: 'Make a backup every day', id: 'schedule-enabled', type: 'checkbox' });
    const sTime = field({ label: 'Time of day', id: 'schedule-time', type: 'time', value: '02:00' });
    const sZone = field({
      label: 'Time zone', id: 'schedule-zone', type: 'select', value: zone,
      options: timeZones([zone]).map((z) => ({ value: z, label: z })),
    });
    const sKeep = field({
      label: 'Scheduled archives to keep', id: 'schedule-keep', type: 'number', min: '1', value: '7',
      hint: 'Older scheduled archives are removed once a new one is made; archives made by hand are never removed.',
    });
    const sPass = field({
      label: 'Passphrase for scheduled archives', id: 'schedule-passphrase', type: 'password', autocomplete: 'new-password',
      hint: `At least ${MIN_PASSPHRASE} characters. Restoring a scheduled archive asks for it.`,
    });
    const sSftp = field({ label: 'Copy each scheduled archive to an SFTP server', id: 'sftp-enabled', type: 'checkbox' });
    const sHost = field({ label: 'SFTP host', id: 'sftp-host', autocomplete: 'off', hint: 'A name or address the appliance can reach.' });
    const sPort = field({ label: 'SFTP port', id: 'sftp-port', type: 'number', min: '1', max: '65535', value: '22' });
    const sUser = field({ label: 'SFTP user name', id: 'sftp-user', autocomplete: 'off' });
    const sDir = field({ label: 'Folder on the SFTP server', id: 'sftp-dir', autocomplete: 'off', placeholder: 'backups/vcrm' });
    const sKey = field({
      label: 'SFTP private key', id: 'sftp-key', type: 'textarea',
      hint: 'An OpenSSH private key without a passphrase (the text from "-----BEGIN OPENSSH PRIVATE KEY-----" to '
        + '"-----END OPENSSH PRIVATE KEY-----"); its public key goes into the SFTP user\'s authorized_keys.',
    });
    const sHostKey = field({
      label: 'SFTP server host key', id: 'sftp-host-key', type: 'textarea',
      hint: 'The server\'s public key line as ssh-keyscan prints it ("host ssh-ed25519 AAAA…"). The appliance '
        + 'copies only to a server that proves it holds this key.',
    });
    const sftpBox = el('fieldset', { class: 'stack', id: 'sftp-fields', hidden: true },
      el('legend', {}, 'SFTP target'), sHost, sPort, sUser, sDir, sKey, sHostKey);
    const lastRun = el('div', { class: 'schedule-last' });
    const scheduleSave = el('button', { type: 'submit', class: 'primary' }, 'Save schedule');
    const runNow = el('button', { type: 'button' }, 'Run the scheduled backup now');
    const scheduleError = messageBox('alert');
    const scheduleStatus = messageBox('status');
    const scheduleForm = el('form', { class: 'stack', 'aria-labelledby': scheduleHeadingId, novalidate: true },
      lastRun, sEnabled, sTime, sZone, sKeep, sPass, sSftp, sftpBox,
      el('div', { class: 'actions' }, scheduleSave, runNow), scheduleError, scheduleStatus);
    sSftp.control.addEventListener('change', () => { sftpBox.hidden = !sSftp.value; });
    let schedule = null;

    /** Empties a write-only field and says under it whether the server holds a value. */
    const secretState = (wrapper, isSet, what) => {
      wrapper.control.value = '';
      wrapper.control.placeholder = isSet ? 'Set; leave empty to keep it' : '';
      wrapper.querySelector('.secret-state')?.remove();
      wrapper.control.after(el('p', { class: 'hint secret-state' },
        isSet ? `A ${what} is set; it is never shown. Type a new one to replace it.` : `No ${what} is set.`));
    };

    function showSchedule(s) {
      schedule = s ?? {};
      const sftp = schedule.sftp ?? {};
      sEnabled.value = Boolean(schedule.enabled);
      if (schedule.time_of_day) sTime.value = schedule.time_of_day;
      const z = schedule.time_zone;
      if (z) {
        if (![...sZone.control.options].some((o) => o.value === z)) sZone.control.append(el('option', { value: z }, z));
        sZone.value = z;
      }
      if (schedule.retention) sKeep.value = String(schedule.retention);
      secretState(sPass, Boolean(schedule.passphrase_set), 'passphrase');
      sSftp.value = Boolean(sftp.enabled);
      sftpBox.hidden = !sSftp.value;
      sHost.value = sftp.host ?? '';
      sPort.value = String(sftp.port ?? 22);
      sUser.value = sftp.user ?? '';
      sDir.value = sftp.remote_dir ?? '';
      sHostKey.value = sftp.host_key ?? '';
      secretState(sKey, Boolean(sftp.private_key_set), 'private key');

      const lines = [];
      const last = schedule.last_run;
      if (!last) {
        lines.push(el('p', { class: 'muted' }, 'No scheduled backup has run yet.'));
      } else if (last.state === 'failed' || last.state === 'copy_failed') {
        lines.push(el('p', { class: 'message error' },
          `The scheduled backup of ${when(last.started_at)} failed: ${reasonOf(last) || 'no reason was given.'}`));
      } else {
        lines.push(el('p', { class: 'muted' }, `The last scheduled backup was made ${when(last.finished_at ?? last.started_at)}.`));
      }
      lines.push(el('p', { class: 'muted' }, schedule.enabled && schedule.next_run
        ? `Next scheduled backup: ${when(schedule.next_run)}.`
        : 'Scheduled backups are off.'));
      lastRun.replaceChildren(...lines);
    }

    async function loadSchedule() {
      try {
        const answer = await api.get('/backups/schedule');
        if (!disposed) showSchedule(answer);
      } catch (error) {
        if (!disposed && error.status !== 0) scheduleError.show(`The schedule could not be read: ${sentence(error.message)}`);
      }
    }

    scheduleForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      scheduleError.clear();
      scheduleStatus.clear();
      for (const f of [sPass, sKeep, sHost, sUser, sDir, sKey, sHostKey]) f.setError('');
      const body = {
        enabled: sEnabled.value,
        time_of_day: sTime.value,
        time_zone: sZone.value,
        retention: Number.parseInt(sKeep.value, 10),
      };
      if (!Number.isInteger(body.retention) || body.retention < 1) {
        sKeep.setError('Keep at least one archive.');
        sKeep.control.focus();
        return;
      }
      if (sPass.value) {
        if (sPass.value.length < MIN_PASSPHRASE) {
          sPass.setError(`Use at least ${MIN_PASSPHRASE} characters.`);
          sPass.control.focus();
          return;
        }
        body.passphrase = sPass.value;
      } else if (sEnabled.value && !schedule?.passphrase_set) {
        sPass.setError('Scheduled archives need a passphrase: enter one.');
        sPass.control.focus();
        return;
      }
      // Only what is filled in: an empty field leaves the stored value as it is.
      const sftp = { enabled: sSftp.value };
      if (sSftp.value) {
        const missing = [[sHost, 'the host'], [sUser, 'the user name'], [sDir, 'the folder'], [sHostKey, 'the server\'s host key']]
          .filter(([f]) => !f.value.trim());
        if (!sKey.value.trim() && !schedule?.sftp?.private_key_set) missing.push([sKey, 'a private key']);
        for (const [f, what] of missing) f.setError(`Enter ${what}.`);
        if (missing.length) {
          missing[0][0].control.focus();
          return;
        }
      }
      if (sHost.value.trim()) sftp.host = sHost.value.trim();
      if (sPort.value) sftp.port = Number.parseInt(sPort.value, 10);
      if (sUser.value.trim()) sftp.user = sUser.value.trim();
      if (sDir.value.trim()) sftp.remote_dir = sDir.value.trim();
      if (sHostKey.value.trim()) sftp.host_key = sHostKey.value.trim();
      if (sKey.value.trim()) sftp.private_key = `${sKey.value.trim()}\n`;
      body.sftp = sftp;
      await busy(scheduleSave, async () => {
        try {
          const answer = await api.put('/backups/schedule', body);
          if (disposed) return;
          showSchedule(answer);
          scheduleStatus.show(body.enabled
            ? `Schedule saved: a backup every day at ${body.time_of_day} (${body.time_zone}), keeping ${body.retention}.`
            : 'Schedule saved: no scheduled backups.');
        } catch (error) {
          if (!disposed) scheduleError.show(`The schedule was not saved: ${sentence(error.message)}`);
        }
      });
    });

    runNow.addEventListener('click', async () => {
      scheduleError.clear();
      scheduleStatus.clear();
      await busy(runNow, async () => {
        try {
          await api.post('/backups/schedule/run');
          if (!disposed) scheduleStatus.show('The scheduled backup starts in a moment, with the schedule\'s passphrase and SFTP copy.');
        } catch (error) {
          if (!disposed) scheduleError.show(`The scheduled backup was not started: ${sentence(error.message)}`);
        }
      });
    });

    // ---- restore ------------------------------------------------------------------------------
    const restoreHeadingId = uniqueId('restore-heading');
    const rFile = field({
      label: 'Backup archive file', id: 'restore-file', type: 'file',
      hint: 'A .vcrmbak file made by vcrm (this version or an older one). Nothing changes until you confirm.',
    });
    rFile.control.accept = '.vcrmbak';
    const rSource = el('p', { hidden: true });
    const rPass = field({ label: 'Passphrase of the archive', id: 'restore-passphrase', type: 'password', autocomplete: 'off' });
    const rCheck = el('button', { type: 'submit', class: 'primary' }, 'Upload and check');
    const rUploadProgress = progressBar('Upload progress');
    const rError = messageBox('alert');
    const rStatus = messageBox('status');
    const rSummary = el('div', { 'aria-live': 'polite' });
    const rConfirm = el('button', { type: 'button', class: 'danger', hidden: true }, 'Confirm restore');
    const rCancel = el('button', { type: 'button', hidden: true }, 'Cancel');
    const rProgress = progressBar('Restore progress');
    const rForm = el('form', { class: 'stack', 'aria-labelledby': restoreHeadingId, novalidate: true },
      rFile, rSource, rPass, el('div', { class: 'actions' }, rCheck), rUploadProgress, rError, rSummary,
      el('div', { class: 'actions' }, rConfirm, rCancel), rProgress, rStatus);
    let uploaded = null; // {file, uploadId} of the chosen file once it is on the server
    let fromBackup = null; // the archive on this appliance chosen in the list
    let verified = null; // the restore the server checked, waiting for Confirm
    let followed = null; // the id of the restore whose progress is shown

    function resetRestore() {
      verified = null;
      rSummary.replaceChildren();
      rConfirm.hidden = true;
      rCancel.hidden = true;
      rError.clear();
    }

    function restoreFromList(b) {
      fromBackup = b;
      uploaded = null;
      resetRestore();
      rFile.hidden = true;
      rSource.hidden = false;
      rSource.replaceChildren(`Archive: the one of ${when(b.created_at)} kept on this appliance. `,
        el('button', { type: 'button', class: 'small', onclick: chooseFileInstead }, 'Choose a file instead'));
      rCheck.textContent = 'Check the archive';
      rPass.control.focus();
    }

    function chooseFileInstead() {
      fromBackup = null;
      resetRestore();
      rSource.hidden = true;
      rFile.hidden = false;
      rCheck.textContent = 'Upload and check';
      rFile.control.focus();
    }

    rFile.control.addEventListener('change', () => {
      uploaded = null;
      resetRestore();
      rUploadProgress.hide();
      rStatus.clear();
    });

    function showVerified(restore) {
      verified = restore;
      const same = restore.same_server === true;
      const warnings = (restore.warnings ?? []).filter(Boolean).map(sentence);
      if (!same && !warnings.some((w) => /licen[cs]e/i.test(w))) {
        warnings.unshift(`The archive comes from another server (serial ${restore.source_serial ?? 'unknown'}): `
          + 'this server keeps its own serial number and licence.');
      }
      rSummary.replaceChildren(
        el('h3', {}, 'What the archive holds'),
        details([
          ['Product version', restore.product_version],
          ['Database schema', restore.schema_version],
          ['Created', restore.created_at ? when(restore.created_at) : null],
          ['Source serial number', restore.source_serial],
          ['Source role', restore.source_role],
          ['Same server', same ? 'Yes: it was made on this server' : 'No: it was made on another server'],
          ['Size', restore.size !== undefined ? formatBytes(restore.size) : null],
          ...Object.entries(restore.counts ?? {}).map(([k, v]) => [COUNT_LABELS[k] ?? phrase({}, k), v]),
        ]),
        ...warnings.map((w) => el('p', { class: 'message notice' }, w)),
        el('p', {}, 'Confirm to replace this appliance\'s data with the archive\'s. The appliance restarts; '
          + 'the database it has now is kept, and you can go back to it afterwards.'));
      rConfirm.hidden = false;
      rCancel.hidden = false;
    }

    /** Uploads the chosen file (resumable) with its progress; remembers its upload id. */
    async function uploadChosen(file) {
      const done = await uploadShowingProgress('/restores/uploads', file, rUploadProgress, 'Checking the archive…');
      uploaded = { file, uploadId: done.id };
      return done.id;
    }

    rForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      rError.clear();
      rStatus.clear();
      rFile.setError('');
      rPass.setError('');
      const file = rFile.control.files?.[0];
      if (!fromBackup && !file) {
        rFile.setError('Choose the backup archive file first.');
        rFile.control.focus();
        return;
      }
      if (!rPass.value) {
        rPass.setError('Enter the passphrase the archive was made with.');
        rPass.control.focus();
        return;
      }
      resetRestore();
      await busy(rCheck, async () => {
        try {
          const body = { passphrase: rPass.value };
          let answer;
          if (fromBackup) {
            answer = await api.post('/restores', { ...body, backup_id: fromBackup.id });
          } else {
            const reuse = uploaded?.file === file; // a check refused for its passphrase keeps the upload
            const uploadId = reuse ? uploaded.uploadId : await uploadChosen(file);
            if (disposed) return;
            try {
              answer = await api.post('/restores', { ...body, upload_id: uploadId });
            } catch (error) {
              // The server no longer has the kept upload (it expired): upload the file again once.
              if (!reuse || error.code !== 'upload_not_found') throw error;
              answer = await api.post('/restores', { ...body, upload_id: await uploadChosen(file) });
            }
            uploaded = null; // the server took the upload over: another check uploads the file again
            rUploadProgress.finish(`Uploaded ${formatBytes(file.size)}.`);
          }
          if (disposed) return;
          showVerified(answer.restore);
          rStatus.show('The whole archive checks out. Read what it holds, then confirm.');
          rConfirm.focus();
        } catch (error) {
          if (disposed) return;
          if (!fromBackup && !uploaded) rUploadProgress.hide();
          else if (!fromBackup) rUploadProgress.finish(`Uploaded ${formatBytes(file.size)}.`);
          rError.show(`This archive cannot be restored: ${sentence(error.message)}`);
        }
      });
    });

    rCancel.addEventListener('click', () => {
      resetRestore();
      rStatus.show('Nothing was changed.');
    });

    rConfirm.addEventListener('click', async () => {
      if (!verified) return;
      const yes = await confirmAction({
        title: 'Restore this archive?',
        message: 'The appliance stops serving for the restore and restarts with the archive\'s data. Live conferences '
          + 'are ended cleanly with their CDRs. The current database is kept until you discard it.',
        confirmLabel: 'Restore now',
      });
      if (!yes) return;
      await busy(rConfirm, async () => {
        try {
          const answer = await api.post(`/restores/${encodeURIComponent(verified.id)}/confirm`);
          if (disposed) return;
          const restore = answer?.restore ?? { ...verified, state: 'running' };
          rConfirm.hidden = true;
          rCancel.hidden = true;
          follow(restore);
        } catch (error) {
          if (!disposed) rError.show(`The restore did not start: ${sentence(error.message)}`);
        }
      });
    });

    // Follows a restore (or a Go back) to its end: "restore" events while the stream is up, and
    // GET /restores/current, which survives the restart, every POLL_MS, also while the
    // appliance is away. It ends "done" or "failed" with the reason. The restore shows in the
    // Restore section, a Go back in the Previous database section.
    let pollScheduled = false;
    let away = false;
    const RESTARTING = 'The appliance is restarting; this page reconnects by itself';

    function trackerOf(r) {
      return r?.operation === 'revert'
        ? { progress: pProgress, status: previousStatus, error: previousError }
        : { progress: rProgress, status: rStatus, error: rError };
    }

    function follow(restore) {
      followed = restore.id;
      if (restore.operation === 'revert') {
        rProgress.hide(); // what the restore said is history now
        rStatus.clear();
      } else {
        rSummary.replaceChildren();
      }
      trackerOf(restore).error.clear();
      showRestoreState(restore);
      if (!pollScheduled) pollRestore();
    }

    /** Shows where `r` is; true once it has ended. */
    function showRestoreState(r) {
      const t = trackerOf(r);
      const revert = r.operation === 'revert';
      const endedAt = r.history?.length ? ` at ${when(r.history[r.history.length - 1].at)}` : '';
      if (r.state === 'done') {
        t.progress.finish(revert ? 'Went back.' : 'Restore finished.');
        t.status.show(revert
          ? `Went back to the previous database${endedAt}: the appliance runs with the data it had before the restore.`
          : `Restore finished${endedAt}: the appliance runs with the data of the archive`
            + `${r.created_at ? ` made ${when(r.created_at)}` : ''}.`);
        if (followed === r.id) ctx.announce(revert ? 'Went back to the previous database.' : 'Restore finished.');
        followed = null;
        loadPrevious();
        loadBackups();
        return true;
      }
      if (r.state === 'failed') {
        t.progress.hide();
        t.status.clear();
        t.error.show(`${revert ? 'Going back' : 'The restore'} failed${endedAt}, and the appliance runs with the data it had `
          + `before: ${reasonOf(r) || 'no reason was given.'}`);
        followed = null;
        loadPrevious();
        return true;
      }
      t.progress.set(r.done, r.total, away ? RESTARTING : phrase(RESTORE_STEPS, r.step ?? r.state));
      return false;
    }

    async function pollRestore() {
      pollScheduled = false;
      if (disposed || !followed) return;
      try {
        const r = (await api.get('/restores/current'))?.restore;
        if (disposed) return;
        away = false;
        if (r?.id === followed && showRestoreState(r)) return;
      } catch (error) {
        if (disposed) return;
        if (error.status === 401) return; // the sign-in page is shown; this page asks again once signed in
        if (error.status === 0 || error.status >= 500) {
          away = true; // restarting: keep asking
          rProgress.set(null, null, RESTARTING);
        }
      }
      pollScheduled = true;
      later(pollRestore, POLL_MS);
    }

    ctx.events.on('restore', (e) => {
      if (!e?.id) return;
      if (followed ? e.id !== followed : e.state !== 'running') return;
      if (!followed) {
        follow(e); // started elsewhere (another console, vcrmctl)
        return;
      }
      away = false;
      showRestoreState(e);
    });

    // ---- the previous database ---------------------------------------------------------------
    const previousHeadingId = uniqueId('previous-heading');
    const previousBox = el('div', {}, el('p', { class: 'working' }, 'Working…'));
    const previousError = messageBox('alert');
    const previousStatus = messageBox('status');
    const pProgress = progressBar('Go back progress');
    const goBack = el('button', { type: 'button' }, 'Go back');
    const discard = el('button', { type: 'button', class: 'danger' }, 'Discard');
    const previousActions = el('div', { class: 'actions', hidden: true }, goBack, discard);
    const previousPanel = el('section', { class: 'panel', 'aria-labelledby': previousHeadingId },
      el('h2', { id: previousHeadingId }, 'Previous database'), previousBox, previousActions, pProgress,
      previousError, previousStatus);
    const NO_PREVIOUS = 'No previous database is kept: no restore has replaced this appliance\'s data, or it was discarded.';

    let previousSeq = 0;
    async function loadPrevious() {
      const seq = ++previousSeq;
      try {
        const p = (await api.get('/restores/previous'))?.previous;
        if (disposed || seq !== previousSeq) return;
        if (!p) {
          previousBox.replaceChildren(el('p', { class: 'muted' }, NO_PREVIOUS));
          previousActions.hidden = true;
          return;
        }
        previousBox.replaceChildren(
          el('p', {}, `The database this appliance ran with until ${when(p.replaced_at)} is kept. Go back to it if the `
            + 'restored data is not what you wanted; discard it once you are sure.'));
        previousActions.hidden = false;
      } catch (error) {
        if (disposed || error.status === 0) return;
        previousBox.replaceChildren();
        previousError.show(`The previous database could not be read: ${sentence(error.message)}`);
      }
    }

    goBack.addEventListener('click', async () => {
      previousError.clear();
      previousStatus.clear();
      const yes = await confirmAction({
        title: 'Go back to the previous database?',
        message: 'The appliance restarts with the data it had before the restore. The data it has now is kept in its place, '
          + 'so you can go back again.',
        confirmLabel: 'Go back',
      });
      if (!yes) return;
      await busy(goBack, async () => {
        try {
          const answer = await api.post('/restores/previous/revert');
          if (disposed) return;
          follow({ operation: 'revert', ...answer.restore });
        } catch (error) {
          if (!disposed) previousError.show(`Could not go back: ${sentence(error.message)}`);
        }
      });
    });

    discard.addEventListener('click', async () => {
      previousError.clear();
      previousStatus.clear();
      const yes = await confirmAction({
        title: 'Discard the previous database?',
        message: 'The database the restore replaced is deleted for good. You can no longer go back to it.',
        confirmLabel: 'Discard',
      });
      if (!yes) return;
      await busy(discard, async () => {
        try {
          await api.del('/restores/previous');
          if (disposed) return;
          previousStatus.show('The previous database was discarded.');
          loadPrevious();
        } catch (error) {
          if (!disposed) previousError.show(`The previous database was not discarded: ${sentence(error.message)}`);
        }
      });
    });

    // ---- backups: progress and the list -------------------------------------------------------
    function showBackupProgress(job) {
      if (job.state === 'failed') {
        createProgress.hide();
        createError.show(`The backup failed: ${reasonOf(job) || 'no reason was given.'}`);
        watching = null;
        return;
      }
      if (job.state === 'complete') {
        createProgress.finish('Finished.');
        createStatus.show('Backup complete. Download the archive and keep it on a drive that is not on this server.');
        createDownload.hidden = false;
        createDownload.replaceChildren(el('a', {
          class: 'button primary', href: api.downloadUrl(`/backups/${encodeURIComponent(job.id)}/download`), download: `${job.id}.vcrmbak`,
        }, 'Download the archive'));
        ctx.announce('Backup complete.');
        watching = null;
        loadBackups();
        return;
      }
      createDownload.hidden = true;
      createProgress.set(job.done, job.total, phrase(BACKUP_PHASES, job.phase));
    }

    ctx.events.on('backup', (e) => {
      if (!e) return;
      if (e.state !== 'running' && e.id !== watching) {
        loadBackups();
        if (e.origin === 'scheduled') loadSchedule();
      }
      if (watching && e.id !== watching) return;
      if (!watching) {
        // Another console's backup by hand shows here too; the schedule's shows in its list.
        if (e.state !== 'running' || e.origin === 'scheduled') return;
        watching = e.id;
        createError.clear();
        createStatus.clear();
      }
      showBackupProgress(e);
    });
    ctx.events.on('open', () => {
      loadBackups();
      if (followed && !pollScheduled) pollRestore();
    });

    let listSeq = 0; // answers can overtake each other: only the latest request's is shown
    async function loadBackups() {
      const seq = ++listSeq;
      try {
        const answer = await api.get('/backups');
        if (disposed || seq !== listSeq) return;
        backups = answer?.backups ?? [];
        archiveTable.update(backups);
        listError.clear();
        const running = answer?.running;
        if (running && running.origin !== 'scheduled' && (!watching || running.id === watching)) {
          watching = running.id;
          showBackupProgress({ ...running, state: 'running' });
          // Events may not reach this page (a stream that is reconnecting): look again soon.
          later(loadBackups, 3000);
        } else if (watching && !running) {
          const made = backups.find((b) => b.id === watching);
          if (made) showBackupProgress({ id: made.id, state: 'complete' });
          else if (answer?.last_failure?.id === watching) showBackupProgress({ ...answer.last_failure, state: 'failed' });
        }
      } catch (error) {
        if (!disposed && seq === listSeq && error.status !== 0) listError.show(`The archives could not be listed: ${sentence(error.message)}`);
      }
    }

    createForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      createError.clear();
      createStatus.clear();
      createDownload.hidden = true;
      if (!checkPassphrasePair(pass1, pass2, MIN_PASSPHRASE)) return;
      await busy(createButton, async () => {
        try {
          const answer = await api.post('/backups', { passphrase: pass1.value });
          if (disposed) return;
          const job = answer?.backup ?? answer;
          watching = job.id;
          pass1.value = '';
          pass2.value = '';
          showBackupProgress({ ...job, state: job.state ?? 'running' });
          later(loadBackups, 3000);
        } catch (error) {
          if (!disposed) createError.show(`The backup was not started: ${sentence(error.message)}`);
        }
      });
    });

    main.append(
      el('section', { class: 'panel', 'aria-labelledby': createHeadingId },
        el('h2', { id: createHeadingId }, 'Create a backup'),
        el('p', {}, 'The archive holds the database, the configuration, the licence and this server\'s certificate and keys. '
          + 'The appliance keeps serving while it is made.'),
        createForm),
      el('section', { class: 'panel adm-table-panel', 'aria-labelledby': listHeadingId },
        el('h2', { id: listHeadingId }, 'Backup archives'), listStatus, listError, archiveTable),
      el('section', { class: 'panel', 'aria-labelledby': restoreHeadingId },
        el('h2', { id: restoreHeadingId }, 'Restore'), rForm),
      previousPanel,
      el('section', { class: 'panel', 'aria-labelledby': scheduleHeadingId },
        el('h2', { id: scheduleHeadingId }, 'Schedule'), scheduleForm),
    );

    // A restore may be under way, waiting for its confirmation, or just finished (this page
    // opened again after the restart, or after signing in again).
    const current = (await api.get('/restores/current').catch(() => null))?.restore;
    if (!disposed && current?.id) {
      const confirmed = current.operation === 'revert' || (current.history ?? []).some((h) => h.step === 'confirmed');
      if (current.state === 'verified') {
        showVerified(current);
        rStatus.show('An archive was checked and waits for confirmation: confirm to restore it, or choose another archive.');
      } else if (confirmed && (current.state === 'done' || current.state === 'failed')) {
        showRestoreState(current);
      } else if (confirmed) {
        follow(current);
      }
    }
    await Promise.all([loadBackups(), loadPrevious(), loadSchedule()]);

    return () => {
      disposed = true;
      timers.stop();
    };
  },
};
