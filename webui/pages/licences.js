// Licences (admin; the NOC may read): this server's serial number with a Copy button (what the
// vendor needs), the active licence and its state, and Update licence: choose the file the
// vendor sent, Preview what it holds and what it changes, then Apply. The reference guide's
// Admin > Server Settings > Licenses steps.

import { busy, el, field, formatDateTime, messageBox, table, uniqueId } from '../lib/ui.js';
import { ensureAdminCss, sentence } from '../lib/admin.js';
import { browserTimeZone } from '../lib/time.js';

const STATE_TEXT = {
  evaluation: 'Evaluation mode',
  not_yet_valid: 'Not yet valid',
  valid: 'Licensed',
  grace: 'Expired: grace period',
  expired: 'Expired',
};

const FIELD_LABELS = {
  licence_id: 'Licence', customer: 'Customer', role: 'Server role', serial: 'Serial number',
  peer_serial: 'Peer serial', sequence: 'Sequence', key_id: 'Signed with key', format: 'Format',
  issued_at: 'Issued', valid_from: 'Valid from', valid_until: 'Valid until', grace_days: 'Grace days',
  upgrades_until: 'Upgrades until', 'features.concurrent_ports': 'Concurrent ports',
  'features.bridges': 'Bridges', 'features.redundancy': 'Redundancy',
};

function label(name) {
  return FIELD_LABELS[name] ?? name.replace(/^features\./, '').replaceAll('_', ' ');
}

function show(value, name, zone) {
  if (value === null || value === undefined) return name === 'valid_until' ? 'no end' : '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (/_at$|^valid_/.test(name) && typeof value === 'string') return formatDateTime(value, zone, { zoneName: true });
  return String(value);
}

/** The facts of a licence as a description list. */
function licenceDetails(licence, zone) {
  const rows = [
    ['Licence', licence.licence_id], ['Customer', licence.customer], ['Server role', licence.role],
    ['Concurrent ports', licence.features.concurrent_ports], ['Bridges', licence.features.bridges],
    ['Redundancy', licence.features.redundancy ? 'allowed' : 'not included'],
    ['Valid from', show(licence.valid_from, 'valid_from', zone)],
    ['Valid until', show(licence.valid_until, 'valid_until', zone)],
    ['Grace period', `${licence.grace_days} days`], ['Upgrades until', licence.upgrades_until],
    ['Sequence', licence.sequence],
  ];
  for (const [name, value] of Object.entries(licence.features)) {
    if (['concurrent_ports', 'bridges', 'redundancy'].includes(name)) continue;
    rows.push([label(name), show(value, name, zone)]);
  }
  return el('dl', { class: 'details' }, rows.map(([dt, dd]) => [el('dt', {}, dt), el('dd', {}, String(dd))]));
}

export default {
  path: '/licenses',
  title: 'Licences',
  roles: ['admin', 'noc'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const { api } = ctx;
    const zone = browserTimeZone();
    const isAdmin = ctx.hasRole('admin');
    let disposed = false;

    // ---- this server ----------------------------------------------------------------------------
    const serverHeadingId = uniqueId('server-heading');
    const serial = el('code', { id: 'serial-number' }, '…');
    const copyStatus = messageBox('status');
    const copy = el('button', { type: 'button' }, 'Copy serial number');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(serial.textContent);
        copyStatus.show('Serial number copied.');
      } catch {
        // No clipboard (an insecure context or a refusal): select it for the user to copy.
        const range = document.createRange();
        range.selectNodeContents(serial);
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
        copyStatus.show('Select and copy the serial number shown.');
      }
    });
    const role = el('dd', {}, '…');
    const state = el('dd', {}, '…');
    const stateMessage = el('p', {}, '');
    const loadError = messageBox('alert');

    // ---- the active licence ---------------------------------------------------------------------
    const activeHeadingId = uniqueId('active-heading');
    const activeBox = el('div', {}, el('p', { class: 'working' }, 'Working…'));

    // ---- update -----------------------------------------------------------------------------
    const updateHeadingId = uniqueId('update-heading');
    const fileField = field({
      label: 'Licence file', id: 'licence-file', type: 'file',
      hint: 'The file the vendor sent for this server\'s serial number (text that starts with '
        + '"-----BEGIN VCRM LICENCE-----"). Keep a copy of the active licence before you update.',
    });
    const preview = el('button', { type: 'submit', class: 'primary' }, 'Preview');
    const apply = el('button', { type: 'button', hidden: true }, 'Apply licence');
    const updateError = messageBox('alert');
    const updateStatus = messageBox('status');
    const previewBox = el('div', { 'aria-live': 'polite' });
    const updateForm = el('form', { class: 'stack', 'aria-labelledby': updateHeadingId, novalidate: true },
      fileField, el('div', { class: 'actions' }, preview, apply), updateError, updateStatus, previewBox);
    let previewed = null; // the file text whose preview is shown

    main.append(
      el('section', { class: 'panel', 'aria-labelledby': serverHeadingId },
        el('h2', { id: serverHeadingId }, 'This server'),
        el('dl', { class: 'details' },
          el('dt', {}, 'Serial number'), el('dd', {}, serial, ' ', copy),
          el('dt', {}, 'Server role'), role,
          el('dt', {}, 'Licence state'), state),
        stateMessage, copyStatus, loadError),
      el('section', { class: 'panel', 'aria-labelledby': activeHeadingId },
        el('h2', { id: activeHeadingId }, 'Active licence'), activeBox),
      isAdmin ? el('section', { class: 'panel', 'aria-labelledby': updateHeadingId },
        el('h2', { id: updateHeadingId }, 'Update licence'), updateForm) : null,
    );

    function render(answer) {
      serial.textContent = answer.serial;
      role.textContent = answer.role;
      state.replaceChildren(el('span', { class: `badge ${answer.state}` }, STATE_TEXT[answer.state] ?? answer.state));
      stateMessage.textContent = sentence(answer.status.message);
      if (!answer.active) {
        const limits = answer.evaluation_limits;
        activeBox.replaceChildren(el('p', {}, `No licence is applied. The appliance runs in evaluation mode: `
          + `${limits.concurrent_ports} concurrent ports and ${limits.bridges} bridges.`));
        return;
      }
      activeBox.replaceChildren(
        licenceDetails(answer.active, zone),
        el('p', { class: 'muted' }, `Applied ${formatDateTime(answer.applied_at, zone, { zoneName: true })}`
          + (answer.applied_by ? ` by ${answer.applied_by}` : '')
          + (answer.previous ? `; it replaced ${answer.previous.licence_id} (sequence ${answer.previous.sequence}).` : '.')),
        el('details', {}, el('summary', {}, 'Show the licence file'), el('pre', { class: 'licence-file' }, answer.file)));
    }

    async function load() {
      try {
        const answer = await api.get('/license');
        if (!disposed) {
          render(answer);
          loadError.clear();
        }
      } catch (error) {
        if (!disposed) loadError.show(`The licence could not be read: ${sentence(error.message)}`);
      }
    }

    async function fileText() {
      const file = fileField.control.files?.[0];
      if (!file) return null;
      return file.text();
    }

    fileField.control.addEventListener('change', () => {
      previewed = null;
      apply.hidden = true;
      previewBox.replaceChildren();
      updateError.clear();
      updateStatus.clear();
    });

    updateForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      updateError.clear();
      updateStatus.clear();
      previewBox.replaceChildren();
      apply.hidden = true;
      previewed = null;
      await busy(preview, async () => {
        const text = await fileText();
        if (text === null) {
          fileField.setError('Choose the licence file first.');
          return;
        }
        fileField.setError('');
        try {
          const answer = await api.post('/license/preview', { file: text });
          if (disposed) return;
          previewed = text;
          const changes = table({
            caption: answer.active ? 'What changes against the active licence' : 'What changes against evaluation mode',
            empty: 'Nothing changes.',
            columns: [
              { key: 'field', label: 'Field', render: (c) => label(c.field) },
              { key: 'before', label: answer.active ? 'Active licence' : 'Now', render: (c) => show(c.before, c.field, zone) },
              { key: 'after', label: 'This file', render: (c) => show(c.after, c.field, zone) },
            ],
            rows: answer.changes,
          });
          previewBox.replaceChildren(
            el('h3', {}, `Preview of ${answer.licence.licence_id}`), licenceDetails(answer.licence, zone), changes);
          apply.hidden = false;
          updateStatus.show('The file verifies and fits this server. Apply it to make it the active licence.');
        } catch (error) {
          updateError.show(`This licence cannot be applied: ${sentence(error.message)}`);
        }
      });
    });

    apply.addEventListener('click', async () => {
      if (previewed === null) return;
      updateError.clear();
      await busy(apply, async () => {
        try {
          const answer = await api.post('/license', { file: previewed });
          if (disposed) return;
          render(answer);
          previewed = null;
          apply.hidden = true;
          previewBox.replaceChildren();
          updateStatus.show(`Licence ${answer.active.licence_id} applied.`);
          ctx.announce(`Licence ${answer.active.licence_id} applied.`);
        } catch (error) {
          updateError.show(`The licence was not applied: ${sentence(error.message)}`);
        }
      });
    });

    await load();
    return () => {
      disposed = true;
    };
  },
};
