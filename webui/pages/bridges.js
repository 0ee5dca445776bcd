// Bridges: every registered Janus bridge with its live health (the 'bridge' events), and for
// admins adding, editing, cordoning, disabling and removing one, and its Janus configuration.
// The noc role sees the table only.

import { busy, confirmAction, el, field, formatDateTime, messageBox, srOnly, table, uniqueId } from '../lib/ui.js';
import { cardTable, ensureAdminCss, rowActions, sentence } from '../lib/admin.js';

const REFRESH_MS = 10_000; // latency changes without an event; refresh it now and then

const STATE_LABELS = { enabled: 'Enabled', cordoned: 'Cordoned', disabled: 'Disabled' };
const HEALTH_LABELS = { up: 'Up', down: 'Down', unknown: 'Unknown' };
const CAUSE_LABELS = {
  address: 'address (the name does not resolve)',
  port: 'port (nothing listens)',
  credentials: 'credentials (wrong admin secret)',
  firewall: 'firewall (no answer in time)',
  protocol: 'protocol (not a Janus answer)',
};

// The API's field names, as the form labels them (server messages start with the field name).
const FIELD_LABELS = {
  name: 'Name',
  url: 'HTTP API URL',
  admin_url: 'Admin API URL',
  admin_secret: 'Admin secret',
  capacity_ports: 'Capacity (ports)',
  pool: 'Pool',
};

/** Which form field a server message is about, or null: 'url must be …', 'field "pool" is …'. */
function fieldOfMessage(message) {
  const m = /^(?:field "([a-z_]+)"|([a-z_]+)\b)/.exec(String(message ?? ''));
  const key = m && (m[1] ?? m[2]);
  return key && Object.hasOwn(FIELD_LABELS, key) ? key : null;
}

/** 'url must be …' → 'The HTTP API URL must be …'. */
function withLabel(message, key) {
  const text = String(message ?? '');
  const rest = text.replace(/^field "[a-z_]+"/, '').replace(new RegExp(`^${key}\\b`), '');
  return sentence(`${FIELD_LABELS[key]}${rest}`);
}

export default {
  path: '/bridges',
  title: 'Bridges',
  roles: ['admin', 'noc'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const isAdmin = ctx.hasRole('admin');
    const api = ctx.api;

    let bridges = [];
    const rowErrors = new Map(); // bridge id -> message shown in its row
    let editing = null; // the bridge being edited, or null when adding
    let configFor = null; // the bridge whose Janus configuration is shown
    let disposed = false;

    const pageError = messageBox('alert');
    const pageStatus = messageBox('status');
    const loading = el('p', { class: 'working' }, 'Loading bridges…');

    // ---- the table ---------------------------------------------------------------------------

    const columns = [
      { key: 'name', label: 'Name' },
      { key: 'url', label: 'HTTP API URL', class: 'adm-url adm-wide', render: (b) => el('span', { class: 'adm-break' }, b.url) },
      { key: 'pool', label: 'Pool' },
      { key: 'state', label: 'State', render: (b) => STATE_LABELS[b.state] ?? b.state },
      { key: 'capacity_ports', label: 'Capacity (ports)', class: 'num' },
      { key: 'health', label: 'Health', class: 'adm-health adm-wide', render: renderHealth },
      {
        key: 'latency_ms',
        label: 'Latency',
        class: 'num',
        render: (b) => (b.health === 'up' && b.latency_ms !== null && b.latency_ms !== undefined
          ? `${b.latency_ms} ms` : '—'),
      },
    ];
    if (isAdmin) columns.push({ key: 'actions', label: 'Actions', class: 'adm-actions-cell adm-wide', render: renderActions });

    const bridgeTable = table({
      caption: 'Registered bridges',
      columns,
      rows: [],
      empty: isAdmin ? 'No bridges yet. Add one with "Add bridge".' : 'No bridges are registered.',
      rowKey: (b) => b.id,
    });
    cardTable(bridgeTable);
    bridgeTable.hidden = true;

    function renderHealth(b) {
      const health = b.health ?? 'unknown';
      const parts = [el('span', { class: `badge ${health}` }, HEALTH_LABELS[health] ?? health)];
      if (b.state === 'disabled') {
        parts.push(el('span', { class: 'adm-note' }, 'Not checked while disabled'));
      } else if (health === 'down') {
        if (b.health_cause) {
          parts.push(el('span', { class: 'adm-note' }, 'Cause: ',
            el('strong', {}, CAUSE_LABELS[b.health_cause] ?? b.health_cause)));
        }
        if (b.health_message) parts.push(el('span', { class: 'adm-note' }, sentence(b.health_message)));
      } else if (health === 'up' && b.version) {
        parts.push(el('span', { class: 'adm-note muted' }, `Janus ${b.version}`));
      }
      if (b.checked_at) {
        parts.push(el('span', { class: 'adm-note muted' }, `Checked ${formatDateTime(b.checked_at, undefined, { seconds: true })}`));
      }
      return el('div', { class: 'adm-cell-stack' }, parts);
    }

    // Row buttons whose request is under way (by focus key). The table is redrawn by live
    // events at any time, so the busy state lives here rather than on a button element; the
    // button stays focusable (aria-disabled) so keyboard focus survives a redraw.
    const actions = rowActions(() => redraw(), (b) => b.id, (b) => b.name);
    const actionButton = actions.button;
    const rowWork = actions.work;

    function renderActions(b) {
      const cordoned = b.state === 'cordoned';
      const disabled = b.state === 'disabled';
      const buttons = el('div', { class: 'adm-row-actions' },
        actionButton(b, 'edit', 'Edit', startEdit),
        cordoned
          ? actionButton(b, 'cordon', 'Uncordon', (x, key) => setState(x, 'enabled', key))
          : actionButton(b, 'cordon', 'Cordon', (x, key) => setState(x, 'cordoned', key)),
        disabled
          ? actionButton(b, 'disable', 'Enable', (x, key) => setState(x, 'enabled', key))
          : actionButton(b, 'disable', 'Disable', (x, key) => setState(x, 'disabled', key)),
        actionButton(b, 'config', 'Janus configuration', showConfig),
        actionButton(b, 'remove', 'Remove', removeBridge, 'danger'));
      const error = rowErrors.get(b.id);
      return el('div', { class: 'adm-cell-stack' }, buttons,
        error ? el('p', { class: 'message error adm-row-error', role: 'alert' }, error) : null);
    }

    function sortBridges() {
      bridges.sort((a, b) => a.name.localeCompare(b.name));
    }

    function redraw() {
      if (disposed) return;
      sortBridges();
      bridgeTable.update(bridges);
      bridgeTable.hidden = false;
      loading.hidden = true;
    }

    function upsert(b) {
      const i = bridges.findIndex((x) => x.id === b.id);
      if (i >= 0) bridges[i] = b;
      else bridges.push(b);
    }

    async function load({ quiet = false } = {}) {
      try {
        const answer = await api.get('/bridges');
        if (disposed) return;
        bridges = Array.isArray(answer?.bridges) ? answer.bridges : [];
        for (const id of [...rowErrors.keys()]) if (!bridges.some((b) => b.id === id)) rowErrors.delete(id);
        pageError.clear();
        redraw();
      } catch (error) {
        if (disposed) return;
        if (!quiet || bridges.length === 0) {
          pageError.show(`The bridges could not be loaded: ${sentence(error.message)}`);
          loading.hidden = true;
        }
      }
    }

    // ---- row actions -------------------------------------------------------------------------

    function setRowError(b, text) {
      if ((rowErrors.get(b.id) ?? '') === (text ?? '')) return;
      if (text) rowErrors.set(b.id, text);
      else rowErrors.delete(b.id);
      redraw();
    }

    const STATE_DONE = {
      enabled: 'is enabled: it takes new bookings',
      cordoned: 'is cordoned: it keeps what it has and takes no new bookings',
      disabled: 'is disabled: it is no longer checked and takes no bookings',
    };

    async function setState(b, state, focusKey) {
      setRowError(b, '');
      pageStatus.clear();
      await rowWork(focusKey, async () => {
        try {
          const updated = await api.patch(`/bridges/${b.id}`, { state });
          upsert(updated);
          redraw();
          pageStatus.show(`Bridge ${updated.name} ${STATE_DONE[updated.state] ?? `is ${updated.state}`}.`);
        } catch (error) {
          setRowError(b, `Could not change ${b.name}: ${sentence(error.message)}`);
        }
      });
    }

    async function removeBridge(b, focusKey) {
      setRowError(b, '');
      pageStatus.clear();
      const ok = await confirmAction({
        title: `Remove bridge ${b.name}?`,
        message: 'vcrm forgets this bridge and stops checking it. Past conferences keep their call '
          + 'detail records. A bridge with conferences booked or running cannot be removed.',
        confirmLabel: 'Remove bridge',
      });
      if (!ok) return;
      await rowWork(focusKey, async () => {
        try {
          await api.del(`/bridges/${b.id}`);
          bridges = bridges.filter((x) => x.id !== b.id);
          rowErrors.delete(b.id);
          if (editing?.id === b.id) closeForm();
          if (configFor?.id === b.id) closeConfig();
          redraw();
          pageStatus.show(`Bridge ${b.name} removed.`);
          bridgeTable.table.focus?.();
        } catch (error) {
          const text = error.status === 409
            ? `${b.name} cannot be removed yet. ${sentence(error.message)}`
            : `Could not remove ${b.name}: ${sentence(error.message)}`;
          setRowError(b, text);
        }
      });
    }

    // ---- add / edit form ---------------------------------------------------------------------

    const formHeadingId = 'bridge-form-heading';
    const formHeading = el('h2', { id: formHeadingId, tabindex: '-1' }, 'Add bridge');
    const fName = field({ label: 'Name', id: 'bridge-name', required: true, maxlength: 64, autocomplete: 'off' });
    const fUrl = field({
      label: 'HTTP API URL', id: 'bridge-url', type: 'url', required: true, autocomplete: 'off',
      hint: 'The Janus HTTP API, e.g. http://10.0.0.5:8088/janus',
    });
    const fAdminUrl = field({
      label: 'Admin API URL', id: 'bridge-admin-url', type: 'url', required: true, autocomplete: 'off',
      hint: 'The Janus Admin API, e.g. http://10.0.0.5:7088/admin',
    });
    const fSecret = field({
      label: 'Admin secret', id: 'bridge-admin-secret', type: 'password', required: true,
      autocomplete: 'new-password', hint: 'admin_secret in the bridge\'s janus.jcfg.',
    });
    const fCapacity = field({
      label: 'Capacity (ports)', id: 'bridge-capacity', type: 'number', required: true, min: 1,
      max: 100000, step: 1, inputmode: 'numeric', value: '100',
    });
    const fPool = field({
      label: 'Pool', id: 'bridge-pool', value: 'default', maxlength: 32, autocomplete: 'off',
      hint: 'Lower-case letters, digits, "-" or "_". Conferences can ask for a pool.',
    });
    const fields = { name: fName, url: fUrl, admin_url: fAdminUrl, admin_secret: fSecret, capacity_ports: fCapacity, pool: fPool };
    const secretHint = fSecret.querySelector('.hint');
    const formError = messageBox('alert');
    const submit = el('button', { type: 'submit', class: 'primary' }, 'Add bridge');
    const cancel = el('button', { type: 'button', onclick: () => closeForm({ restoreFocus: true }) }, 'Cancel');
    const form = el('form', { class: 'stack wide', 'aria-labelledby': formHeadingId, novalidate: true, onsubmit: onSubmit },
      el('div', { class: 'grid-2' }, fName, fPool, fUrl, fAdminUrl, fSecret, fCapacity),
      formError,
      el('div', { class: 'actions' }, submit, cancel));
    const formPanel = el('section', { class: 'panel', 'aria-labelledby': formHeadingId, hidden: true }, formHeading, form);

    const addButton = el('button', {
      type: 'button',
      class: 'primary',
      'aria-expanded': 'false',
      'aria-controls': 'bridge-form-panel',
      onclick: () => openForm(null),
    }, 'Add bridge');
    formPanel.id = 'bridge-form-panel';

    let returnFocusKey = null;

    function clearFieldErrors() {
      for (const f of Object.values(fields)) f.setError('');
      formError.clear();
    }

    function openForm(b) {
      editing = b;
      clearFieldErrors();
      form.reset();
      returnFocusKey = b ? `${b.id}:edit` : null;
      if (b) {
        formHeading.textContent = `Edit bridge ${b.name}`;
        submit.textContent = 'Save bridge';
        fName.value = b.name;
        fUrl.value = b.url;
        fAdminUrl.value = b.admin_url;
        fSecret.value = '';
        fSecret.control.required = false;
        secretHint.textContent = 'Leave empty to keep the current secret.';
        fCapacity.value = String(b.capacity_ports);
        fPool.value = b.pool;
      } else {
        formHeading.textContent = 'Add bridge';
        submit.textContent = 'Add bridge';
        fCapacity.value = '100';
        fPool.value = 'default';
        fSecret.control.required = true;
        secretHint.textContent = 'admin_secret in the bridge\'s janus.jcfg.';
      }
      formPanel.hidden = false;
      addButton.setAttribute('aria-expanded', b ? 'false' : 'true');
      fName.control.focus();
      formPanel.scrollIntoView({ block: 'nearest' });
    }

    function startEdit(b) {
      openForm(b);
    }

    function closeForm({ restoreFocus = false } = {}) {
      const key = returnFocusKey;
      const wasAdding = !editing;
      editing = null;
      formPanel.hidden = true;
      addButton.setAttribute('aria-expanded', 'false');
      clearFieldErrors();
      if (!restoreFocus) return;
      const target = key
        ? bridgeTable.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)
        : (wasAdding ? addButton : null);
      target?.focus();
    }

    function readForm() {
      clearFieldErrors();
      const body = {
        name: fName.value.trim(),
        url: fUrl.value.trim(),
        admin_url: fAdminUrl.value.trim(),
        pool: fPool.value.trim() || 'default',
      };
      const problems = [];
      if (!body.name) problems.push(['name', 'Enter a name for the bridge.']);
      if (!body.url) problems.push(['url', 'Enter the HTTP API URL, e.g. http://10.0.0.5:8088/janus.']);
      else if (!/^https?:\/\/\S+$/i.test(body.url)) problems.push(['url', 'The HTTP API URL must start with http:// or https://.']);
      if (!body.admin_url) problems.push(['admin_url', 'Enter the Admin API URL, e.g. http://10.0.0.5:7088/admin.']);
      else if (!/^https?:\/\/\S+$/i.test(body.admin_url)) problems.push(['admin_url', 'The Admin API URL must start with http:// or https://.']);
      const secret = fSecret.value;
      if (secret) body.admin_secret = secret;
      else if (!editing) problems.push(['admin_secret', 'Enter the admin secret (admin_secret in janus.jcfg).']);
      const capacityText = fCapacity.value.trim();
      const capacity = Number(capacityText);
      if (!capacityText || !Number.isInteger(capacity) || capacity < 1 || capacity > 100000) {
        problems.push(['capacity_ports', 'Enter the capacity as a whole number of ports from 1 to 100000.']);
      } else {
        body.capacity_ports = capacity;
      }
      for (const [key, text] of problems) fields[key].setError(text);
      if (problems.length) {
        formError.show(problems.length === 1 ? 'Correct the field marked above.' : `Correct the ${problems.length} fields marked above.`);
        fields[problems[0][0]].control.focus();
        return null;
      }
      return body;
    }

    async function onSubmit(event) {
      event.preventDefault();
      pageStatus.clear();
      const body = readForm();
      if (!body) return;
      const target = editing;
      await busy(submit, async () => {
        try {
          const saved = target
            ? await api.patch(`/bridges/${target.id}`, body)
            : await api.post('/bridges', body);
          upsert(saved);
          rowErrors.delete(saved.id);
          redraw();
          returnFocusKey = target ? `${saved.id}:edit` : null;
          closeForm({ restoreFocus: true });
          pageStatus.show(target
            ? `Bridge ${saved.name} saved.`
            : `Bridge ${saved.name} added. Its health shows within a few seconds.`);
        } catch (error) {
          const key = fieldOfMessage(error.message)
            ?? (error.code === 'bridge_exists' ? 'name' : null)
            ?? (error.code === 'capacity_in_use' ? 'capacity_ports' : null);
          if (key) {
            fields[key].setError(key === 'name' || key === 'capacity_ports' ? sentence(error.message) : withLabel(error.message, key));
            formError.show(target ? 'The bridge was not saved. Correct the field marked above.' : 'The bridge was not added. Correct the field marked above.');
            fields[key].control.focus();
          } else {
            formError.show(`${target ? 'The bridge was not saved' : 'The bridge was not added'}: ${sentence(error.message)}`);
          }
        }
      });
    }

    // ---- Janus configuration -----------------------------------------------------------------

    const configHeadingId = 'janus-config-heading';
    const configHeading = el('h2', { id: configHeadingId, tabindex: '-1' }, 'Janus configuration');
    const configIntro = el('p', {}, 'Paste these fragments into the bridge\'s /etc/janus files and restart Janus, '
      + 'so that it reports joins and leaves to vcrm at once.');
    // Focusable so the keyboard can scroll it sideways.
    const configPre = el('pre', { class: 'adm-config', tabindex: '0' });
    const configError = messageBox('alert');
    const configStatus = messageBox('status');
    const copyButton = el('button', { type: 'button', class: 'primary', onclick: copyConfig }, 'Copy');
    const closeConfigButton = el('button', { type: 'button', onclick: () => closeConfig({ restoreFocus: true }) }, 'Close');
    const configPanel = el('section', { class: 'panel', 'aria-labelledby': configHeadingId, hidden: true },
      configHeading, configIntro, configError, configPre,
      el('div', { class: 'actions' }, copyButton, closeConfigButton), configStatus);

    /** GET the configuration as text (the API answers text/plain, which api.request does not return). */
    async function fetchConfig(id) {
      const path = `/bridges/${id}/janus-config`;
      let response;
      try {
        response = await fetch(`/api/v1${path}`, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'text/plain' } });
      } catch {
        throw new Error('Cannot reach the vcrm server. Check the network connection and try again.');
      }
      if (!response.ok) {
        // Let the API wrapper turn the error answer into an ApiError (and notice an ended session).
        await api.get(path);
        throw new Error(`The server answered ${response.status}. Try again.`);
      }
      return response.text();
    }

    async function showConfig(b, focusKey) {
      configFor = b;
      setRowError(b, '');
      configError.clear();
      configStatus.clear();
      await rowWork(focusKey, async () => {
        try {
          const text = await fetchConfig(b.id);
          if (disposed) return;
          configHeading.textContent = `Janus configuration for ${b.name}`;
          configPre.textContent = text;
          configPre.hidden = false;
          copyButton.hidden = false;
          configPanel.hidden = false;
          configHeading.focus();
          configPanel.scrollIntoView({ block: 'start' });
        } catch (error) {
          configFor = null;
          setRowError(b, `Could not get the Janus configuration of ${b.name}: ${sentence(error.message)}`);
        }
      });
    }

    function closeConfig({ restoreFocus = false } = {}) {
      const b = configFor;
      configFor = null;
      configPanel.hidden = true;
      configPre.textContent = '';
      configStatus.clear();
      if (restoreFocus && b) bridgeTable.querySelector(`[data-focus-key="${CSS.escape(`${b.id}:config`)}"]`)?.focus();
    }

    async function copyConfig() {
      configStatus.clear();
      configError.clear();
      const text = configPre.textContent;
      try {
        if (!navigator.clipboard?.writeText) throw new Error('no clipboard');
        await navigator.clipboard.writeText(text);
        configStatus.show('Copied to the clipboard.');
        return;
      } catch {
        // fall back to selecting the text and the legacy copy command
      }
      const range = document.createRange();
      range.selectNodeContents(configPre);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      let copied = false;
      try {
        copied = document.execCommand('copy');
      } catch {
        copied = false;
      }
      if (copied) configStatus.show('Copied to the clipboard.');
      else configStatus.show('The text is selected: copy it with Ctrl+C (or Cmd+C).');
    }

    // ---- page ------------------------------------------------------------------------------

    const liveNote = el('p', { class: 'muted adm-live' },
      'Health is checked every few seconds and this table follows it live.');
    const toolbar = el('div', { class: 'toolbar' }, isAdmin ? addButton : null, el('span', { class: 'spacer' }), liveNote);

    main.append(...[
      toolbar,
      pageError,
      isAdmin ? formPanel : null,
      el('section', { class: 'panel adm-table-panel', 'aria-label': 'Bridge list' }, loading, bridgeTable, pageStatus),
      isAdmin ? configPanel : null,
    ].filter(Boolean));

    const offBridge = ctx.events.on('bridge', (payload) => {
      if (!payload || payload.id === undefined) return;
      if (payload.removed) {
        bridges = bridges.filter((b) => b.id !== payload.id);
        rowErrors.delete(payload.id);
      } else {
        upsert(payload);
        if (configFor?.id === payload.id) configFor = payload;
      }
      redraw();
    });
    const offOpen = ctx.events.on('open', () => load({ quiet: true }));

    await load();
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') load({ quiet: true });
    }, REFRESH_MS);

    return () => {
      disposed = true;
      clearInterval(timer);
      offBridge();
      offOpen();
    };
  },
};
