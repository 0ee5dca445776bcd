// Server Software Upgrade (admin and operator; the reference guide's Admin > Maintenance >
// Server Software Upgrade): upload a signed .bin bundle (resumable, with a progress bar), see
// what it is once the appliance has checked it (version, signer, release date, compatibility,
// the lowest version it upgrades from, release notes, whether the licence entitles it, a
// downgrade), discard it or confirm it with a passphrase for the pre-upgrade backup, then follow
// the steps live across the appliance's restart to "Upgrade complete" or "Rolled back" with the
// reason; the history of upgrades, and going back to the previous version.

import {
  busy, confirmAction, el, field, formatDateTime, messageBox, table, uniqueId,
} from '../lib/ui.js';
import {
  cardTable, checkPassphrasePair, details, ensureAdminCss, formatBytes, pageTimers, progressBar, sentence,
} from '../lib/admin.js';
import { browserTimeZone } from '../lib/time.js';
import { uploadShowingProgress } from '../lib/upload.js';

const MIN_PASSPHRASE = 12; // the server's rule for backup passphrases
const POLL_MS = 1500;

// The journal's steps of an upgrade, in order, with what each says once done (the server sends
// these labels with every step; these are for a step it sends none for).
const UPGRADE_STEPS = [
  ['confirmed', 'Upgrade confirmed'],
  ['backup-made', 'Pre-upgrade backup made'],
  ['slot-written', 'New version written to the inactive slot'],
  ['db-snapshot', 'Services stopped; database snapshot taken'],
  ['db-pointer-switched', 'Database switched to the snapshot'],
  ['slot-pointer-switched', 'Switched to the new version; restarting'],
  ['trial-start', 'New version starting'],
  ['migrated', 'Migrations applied'],
  ['healthy', 'Health check passed'],
  ['done', 'Upgrade complete'],
];
const ROLLBACK_STEPS = {
  'rollback-started': 'Rolling back',
  'rolled-back-slot': 'Previous version restored',
  'rolled-back-database': 'Previous database restored',
  'dropped-copy': 'Migrated copy dropped',
  failed: 'Rolled back',
};
const STEP_LABELS = { ...Object.fromEntries(UPGRADE_STEPS), ...ROLLBACK_STEPS };
const STEP_ORDER = UPGRADE_STEPS.map(([name]) => name);

// Refusals the operator can act on here, said before the server's own sentence.
const CONFIRM_HINTS = {
  not_installed: 'This appliance does not run from an installed slot (for example it was started from a build tree), '
    + 'so it cannot switch to another version.',
  upgrade_in_progress: 'An upgrade is already under way; its progress is shown below.',
  restore_in_progress: 'A restore is under way; wait until it has finished.',
  backup_running: 'A backup is being made; wait until it has finished.',
  no_pending_bundle: 'No checked bundle is waiting any more (it was discarded or replaced); upload it again.',
};

const OUTCOME_LABELS = {
  complete: 'Complete', 'rolled-back': 'Rolled back', 'gone-back': 'Went back',
};

const isEnded = (r) => Boolean(r?.outcome) || r?.phase === 'done' || r?.phase === 'failed';

export default {
  path: '/upgrade',
  title: 'Server Software Upgrade',
  roles: ['admin', 'operator'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const { api } = ctx;
    const zone = browserTimeZone();
    const when = (iso) => formatDateTime(iso, zone, { zoneName: true, seconds: true });
    let disposed = false;
    const timers = pageTimers();
    const { later } = timers;
    let status = null; // the last GET /upgrade

    // ---- what runs now, and going back -------------------------------------------------------
    const runningHeadingId = uniqueId('running-heading');
    const runningBox = el('div', {}, el('p', { class: 'working' }, 'Working…'));
    const goBack = el('button', { type: 'button', hidden: true }, 'Go back to the previous version');
    const runningError = messageBox('alert');

    function showRunning() {
      const running = status?.running ?? {};
      const previous = status?.previous;
      runningBox.replaceChildren(details([
        ['Version', running.version],
        ['Database schema', running.schema],
        ['Slot', running.slot ? `Slot ${running.slot}` : `Not installed in a slot${running.slot_note ? ` (${running.slot_note})` : ''}`],
        ['Previous version', previous ? `${previous.version} (slot ${previous.slot}), kept for going back` : 'None kept'],
      ]));
      goBack.hidden = !previous || status?.state === 'applying';
    }

    // ---- upload and check ----------------------------------------------------------------------
    const uploadHeadingId = uniqueId('upload-heading');
    const file = field({
      label: 'Upgrade bundle file', id: 'upgrade-file', type: 'file',
      hint: 'A signed .bin bundle from the vendor. The appliance checks its signature, every hash, the version and the '
        + 'licence before you decide anything; nothing changes until you confirm.',
    });
    file.control.accept = '.bin';
    const allowDowngrade = ctx.hasRole('admin')
      ? field({
        label: 'Allow a downgrade', id: 'upgrade-allow-downgrade', type: 'checkbox',
        hint: 'Admins only: accept a bundle that is not newer than the running version.',
      })
      : null;
    const check = el('button', { type: 'submit', class: 'primary' }, 'Upload and check');
    const uploadProgress = progressBar('Upload progress');
    const uploadError = messageBox('alert');
    const uploadStatus = messageBox('status');
    const uploadForm = el('form', { class: 'stack', 'aria-labelledby': uploadHeadingId, novalidate: true },
      file, allowDowngrade, el('div', { class: 'actions' }, check), uploadProgress, uploadError, uploadStatus);
    let uploaded = null; // {file, uploadId} of a chosen file the server kept after a refusal

    file.control.addEventListener('change', () => {
      uploaded = null;
      uploadProgress.hide();
      uploadError.clear();
      uploadStatus.clear();
    });

    async function uploadChosen(chosen) {
      const done = await uploadShowingProgress('/upgrade/uploads', chosen, uploadProgress, 'Checking the bundle…');
      uploaded = { file: chosen, uploadId: done.id };
      return done.id;
    }

    uploadForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      uploadError.clear();
      uploadStatus.clear();
      file.setError('');
      const chosen = file.control.files?.[0];
      if (!chosen) {
        file.setError('Choose the upgrade bundle file first.');
        file.control.focus();
        return;
      }
      const body = {};
      if (allowDowngrade?.value) body.allow_downgrade = true;
      await busy(check, async () => {
        try {
          const reuse = uploaded?.file === chosen; // a refusal the operator can clear keeps the upload
          let answer;
          try {
            answer = await api.post('/upgrade', { ...body, upload_id: reuse ? uploaded.uploadId : await uploadChosen(chosen) });
          } catch (error) {
            // The kept upload is gone (refused for good, or expired): upload the file again once.
            if (!reuse || error.code !== 'upload_not_found') throw error;
            answer = await api.post('/upgrade', { ...body, upload_id: await uploadChosen(chosen) });
          }
          uploaded = null; // the server holds it as the pending bundle now
          if (disposed) return;
          uploadProgress.finish(`Uploaded ${formatBytes(chosen.size)}.`);
          await refresh();
          uploadStatus.show(`The bundle checks out: ${answer?.bundle?.version ?? 'it'} is signed by a trusted key and every `
            + 'hash matches. Read what it is below, then confirm or discard it.');
          confirmPass.control.focus();
        } catch (error) {
          if (disposed) return;
          if (uploaded) uploadProgress.finish(`Uploaded ${formatBytes(chosen.size)}.`);
          else uploadProgress.hide();
          uploadError.show(`This bundle cannot be installed: ${sentence(error.message)}`);
        }
      });
    });

    // ---- the pending bundle: what it is, confirm or discard ----------------------------------
    const pendingHeadingId = uniqueId('pending-heading');
    const pendingBox = el('div', { class: 'stack' });
    const confirmPass = field({
      label: 'Passphrase for the pre-upgrade backup', id: 'upgrade-passphrase', type: 'password', autocomplete: 'new-password',
      hint: `At least ${MIN_PASSPHRASE} characters. Before it changes anything the appliance makes a backup archive `
        + '(kept in the Backup/Restore list) encrypted with this passphrase; restoring it asks for it.',
    });
    const confirmPass2 = field({
      label: 'Repeat the passphrase', id: 'upgrade-passphrase-again', type: 'password', autocomplete: 'new-password',
    });
    const confirm = el('button', { type: 'submit', class: 'primary' }, 'Upgrade now');
    const discard = el('button', { type: 'button', class: 'danger' }, 'Discard');
    const pendingError = messageBox('alert');
    const pendingStatus = messageBox('status');
    const confirmForm = el('form', { class: 'stack', hidden: true, novalidate: true, 'aria-labelledby': pendingHeadingId },
      confirmPass, confirmPass2, el('div', { class: 'actions' }, confirm));
    const discardActions = el('div', { class: 'actions', hidden: true }, discard);

    function showPending() {
      const b = status?.pending;
      const applying = status?.state === 'applying';
      confirmForm.hidden = !b || applying;
      discardActions.hidden = (!b && !status?.pending_error) || applying;
      if (!b) {
        pendingBox.replaceChildren(el('p', { class: status?.pending_error ? 'message error' : 'muted' }, status?.pending_error
          ? `The waiting bundle cannot be read: ${sentence(status.pending_error)}`
          : 'No bundle is waiting: upload one above.'));
        return;
      }
      const until = b.licence_upgrades_until;
      const notices = [];
      if (b.downgrade) {
        notices.push(el('p', { class: 'message notice' }, `This is a downgrade: ${b.version} is not newer than the running `
          + `${b.running_version}. ${b.allow_downgrade ? `An admin (${b.verified_by}) allowed it.` : ''}`.trim()));
      }
      if (b.entitled === false) {
        notices.push(el('p', { class: 'message error' }, 'The licence does not entitle this appliance to this release: '
          + 'request a software licence upgrade file.'));
      }
      pendingBox.replaceChildren(
        details([
          ['Version', b.version],
          ['Running now', b.running_version],
          ['Signed by', b.key_id ? `key ${b.key_id}` : null],
          ['Release date', b.release_date],
          ['Compatible with', b.compatible],
          ['Upgrades from', b.min_version ? `version ${b.min_version} or later` : null],
          ['Licence', b.entitled === false ? 'Not entitled'
            : until ? `Entitled (upgrades released until ${until})` : 'Entitled (the licence sets no upgrade date)'],
          ['Size', b.size !== undefined ? formatBytes(b.size) : null],
          ['Files', b.files !== undefined ? `${b.files} (${formatBytes(b.install_bytes)} installed)` : null],
          ['SHA-256', b.sha256 ? el('code', { class: 'adm-break' }, b.sha256) : null],
          ['Checked', b.verified_at ? `${when(b.verified_at)} by ${b.verified_by}` : null],
        ]),
        ...notices,
        el('h3', {}, 'Release notes'),
        el('pre', { class: 'release-notes' }, b.notes || 'The bundle has no release notes.'),
        el('p', {}, `Confirm to upgrade from ${b.running_version} to ${b.version}. The appliance stops serving for a few `
          + 'seconds while it switches; conferences keep running on their bridges. If the new version does not come up '
          + 'healthy, the appliance goes back by itself.'));
    }

    confirmForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      pendingError.clear();
      pendingStatus.clear();
      const b = status?.pending;
      if (!b || !checkPassphrasePair(confirmPass, confirmPass2, MIN_PASSPHRASE)) return;
      const yes = await confirmAction({
        title: `Upgrade to ${b.version}?`,
        message: `The appliance makes the pre-upgrade backup, writes ${b.version} beside ${b.running_version} and restarts `
          + 'on it. It is offline for a few seconds; this page follows it across the restart.',
        confirmLabel: 'Upgrade now',
      });
      if (!yes) return;
      await busy(confirm, async () => {
        try {
          const answer = await api.post('/upgrade/confirm', { backup_passphrase: confirmPass.value });
          if (disposed) return;
          confirmPass.value = '';
          confirmPass2.value = '';
          confirmForm.hidden = true;
          follow(answer?.upgrade);
        } catch (error) {
          if (disposed) return;
          const hint = CONFIRM_HINTS[error.code];
          pendingError.show(`The upgrade did not start: ${hint ? `${hint} ` : ''}${sentence(error.message)}`);
          if (error.code === 'upgrade_in_progress') refresh();
        }
      });
    });

    discard.addEventListener('click', async () => {
      pendingError.clear();
      pendingStatus.clear();
      const b = status?.pending;
      const yes = await confirmAction({
        title: 'Discard this bundle?',
        message: `The uploaded bundle${b ? ` ${b.version}` : ''} is deleted from the appliance. Nothing else changes; `
          + 'to install it later, upload it again.',
        confirmLabel: 'Discard',
      });
      if (!yes) return;
      await busy(discard, async () => {
        try {
          await api.del('/upgrade/pending');
          if (disposed) return;
          await refresh();
          pendingStatus.show('The bundle was discarded. Nothing was changed.');
        } catch (error) {
          if (!disposed) pendingError.show(`The bundle was not discarded: ${sentence(error.message)}`);
        }
      });
    });

    // ---- progress: the journal's steps, followed across the restart --------------------------
    const progressHeadingId = uniqueId('progress-heading');
    const progress = progressBar('Upgrade progress');
    const stepList = el('ol', { class: 'upgrade-steps', 'aria-label': 'Steps so far' });
    const progressError = messageBox('alert');
    const progressStatus = messageBox('status');
    const progressIdle = el('p', { class: 'muted' }, 'No upgrade has run since this appliance was installed.');
    let followed = null; // the id of the journal whose steps are followed to their end
    let pollScheduled = false;
    let away = false;
    const RESTARTING = 'The appliance is restarting; this page reconnects by itself';

    const labelOf = (step) => step?.label || STEP_LABELS[step?.name] || String(step?.name ?? '').replaceAll('-', ' ');

    /** Shows where the journal `r` is; true once it has ended. */
    function showRecord(r) {
      progressIdle.hidden = true;
      const steps = r.steps ?? [];
      stepList.replaceChildren(...steps.map((s, i) => el('li', { 'aria-current': i === steps.length - 1 ? 'step' : undefined },
        el('span', { class: 'upgrade-step-label' }, labelOf(s)),
        s.at ? el('span', { class: 'muted' }, ` — ${when(s.at)}`) : null)));
      const goingBack = r.operation === 'go-back';
      if (isEnded(r)) {
        if (r.outcome === 'complete' || r.outcome === 'gone-back') {
          const text = goingBack
            ? `Went back to the previous version — now running ${r.to_version}.`
            : `Upgrade complete — now running ${r.to_version}.`;
          progress.finish(goingBack ? 'Went back.' : 'Upgrade complete.');
          progressError.clear();
          progressStatus.show(text);
          if (followed === r.id) ctx.announce(text);
        } else {
          progress.hide();
          progressStatus.clear();
          const reason = sentence(r.rollback_reason ?? r.message) || 'No reason was given.';
          progressError.show(`Rolled back: ${reason} The appliance runs ${r.from_version} again, with its data as it was.`);
        }
        if (followed === r.id) {
          followed = null;
          ctx.refreshVersion?.();
        }
        return true;
      }
      progressError.clear();
      progressStatus.clear();
      const last = steps[steps.length - 1];
      const rollingBack = Object.hasOwn(ROLLBACK_STEPS, last?.name ?? '');
      const at = STEP_ORDER.indexOf(r.step ?? last?.name);
      const caption = away ? RESTARTING : (r.message && rollingBack ? sentence(r.message) : labelOf(last ?? { name: r.step }));
      if (rollingBack || goingBack || at < 0) progress.set(null, null, caption);
      else progress.set(at + 1, STEP_ORDER.length, caption);
      return false;
    }

    function follow(r) {
      if (!r?.id) return;
      followed = r.id;
      uploadStatus.clear(); // what the upload said is history now
      uploadProgress.hide();
      showRecord(r);
      goBack.hidden = true;
      confirmForm.hidden = true;
      discardActions.hidden = true;
      if (!pollScheduled) poll();
    }

    // GET /upgrade answers on both sides of the restart; while the appliance is away it fails
    // (no answer, 502/503) and the page keeps asking.
    async function poll() {
      pollScheduled = false;
      if (disposed || !followed) return;
      try {
        const answer = await api.get('/upgrade');
        if (disposed) return;
        away = false;
        status = answer;
        const r = answer?.upgrade;
        if (r?.id === followed && showRecord(r)) {
          showAll();
          return;
        }
      } catch (error) {
        if (disposed) return;
        if (error.status === 401) return; // the sign-in page is shown; this page looks again once signed in
        if (error.status === 0 || error.status >= 500) {
          away = true;
          progress.set(null, null, RESTARTING);
        }
      }
      pollScheduled = true;
      later(poll, POLL_MS);
    }

    ctx.events.on('upgrade', (e) => {
      if (!e) return;
      const r = e.upgrade;
      if (r?.id) {
        away = false;
        if (followed === r.id) {
          if (showRecord(r)) refresh();
          return;
        }
        if (!followed && !isEnded(r)) {
          follow(r); // started elsewhere (another console, vcrmctl)
          return;
        }
      }
      if (e.state === 'verified' || e.state === 'discarded' || isEnded(r)) refresh();
    });
    ctx.events.on('open', () => {
      if (followed && !pollScheduled) poll();
      else if (!followed) refresh();
    });

    // ---- history -------------------------------------------------------------------------------
    const historyHeadingId = uniqueId('history-heading');
    const historyTable = cardTable(table({
      caption: 'Upgrades of this appliance, newest first',
      hideCaption: true,
      empty: 'No upgrade has run on this appliance yet.',
      rowKey: (h) => h.id,
      columns: [
        { key: 'started_at', label: 'Started', render: (h) => when(h.started_at) },
        { key: 'operation', label: 'Operation', render: (h) => (h.operation === 'go-back' ? 'Go back' : 'Upgrade') },
        { key: 'from_version', label: 'From' },
        { key: 'to_version', label: 'To' },
        {
          key: 'outcome',
          label: 'Outcome',
          render: (h) => el('span', { class: ['badge', h.outcome === 'rolled-back' ? 'failed' : h.outcome ? 'up' : 'starting'] },
            OUTCOME_LABELS[h.outcome] ?? 'Under way'),
        },
        { key: 'reason', label: 'Reason', class: 'adm-wide', render: (h) => (h.reason ? el('span', { class: 'adm-break' }, sentence(h.reason)) : '') },
        { key: 'requested_by', label: 'By' },
        { key: 'ended_at', label: 'Ended', render: (h) => (h.ended_at ? when(h.ended_at) : '') },
        { key: 'backup', label: 'Pre-upgrade backup', class: 'adm-wide', render: (h) => (h.backup ? el('code', { class: 'adm-break' }, h.backup) : 'None') },
      ],
    }));

    goBack.addEventListener('click', async () => {
      runningError.clear();
      const previous = status?.previous;
      if (!previous) return;
      const yes = await confirmAction({
        title: `Go back to version ${previous.version}?`,
        message: `The appliance restarts on version ${previous.version} (slot ${previous.slot}) with the database it had `
          + 'before the upgrade: what changed since is not carried back (the current database is kept). It is offline '
          + 'for a few seconds; this page follows it across the restart.',
        confirmLabel: 'Go back',
      });
      if (!yes) return;
      await busy(goBack, async () => {
        try {
          const answer = await api.post('/upgrade/go-back');
          if (disposed) return;
          follow(answer?.upgrade);
        } catch (error) {
          if (!disposed) runningError.show(`Could not go back: ${sentence(error.message)}`);
        }
      });
    });

    // ---- the whole page from GET /upgrade ------------------------------------------------------
    const statusError = messageBox('alert');

    function showAll() {
      showRunning();
      showPending();
      historyTable.update(status?.history ?? []);
    }

    let refreshSeq = 0; // answers can overtake each other: only the latest request's is shown
    async function refresh() {
      const seq = ++refreshSeq;
      try {
        const answer = await api.get('/upgrade');
        if (disposed || seq !== refreshSeq) return;
        status = answer;
        statusError.clear();
        showAll();
        const r = answer?.upgrade;
        if (r?.id && !isEnded(r)) {
          if (!followed) follow(r);
        } else if (r?.id && !followed) {
          showRecord(r);
        }
      } catch (error) {
        if (!disposed && seq === refreshSeq && error.status !== 0 && error.status !== 401) {
          statusError.show(`The upgrade state could not be read: ${sentence(error.message)}`);
        }
      }
    }

    main.append(
      statusError,
      el('section', { class: 'panel', 'aria-labelledby': runningHeadingId },
        el('h2', { id: runningHeadingId }, 'Running version'), runningBox,
        el('div', { class: 'actions' }, goBack), runningError),
      el('section', { class: 'panel', 'aria-labelledby': uploadHeadingId },
        el('h2', { id: uploadHeadingId }, 'Upload a bundle'), uploadForm),
      el('section', { class: 'panel', 'aria-labelledby': pendingHeadingId },
        el('h2', { id: pendingHeadingId }, 'Bundle waiting for confirmation'), pendingBox, confirmForm, discardActions,
        pendingError,
        pendingStatus),
      el('section', { class: 'panel', 'aria-labelledby': progressHeadingId },
        el('h2', { id: progressHeadingId }, 'Upgrade progress'), progressIdle, progress, stepList, progressStatus,
        progressError),
      el('section', { class: 'panel adm-table-panel', 'aria-labelledby': historyHeadingId },
        el('h2', { id: historyHeadingId }, 'Upgrade history'), historyTable),
    );
    await refresh();

    return () => {
      disposed = true;
      timers.stop();
    };
  },
};
