// Audit log (admin): every request that changed state, newest first, filtered by user and
// action, with "Older entries" paging on next_before_id. Refusals of requests without a session
// are one row per address, action and minute with a count. The filters live in the address
// (?username=…&action=…) so a filtered view can be bookmarked or reloaded.

import { busy, el, field, formatDateTime, messageBox, table, uniqueId } from '../lib/ui.js';
import { cardTable, ensureAdminCss, sentence } from '../lib/admin.js';

const PAGE_SIZE = 50;

// Actions the API records (suggestions only: any text can be typed).
const KNOWN_ACTIONS = [
  'auth.login', 'auth.logout', 'auth.change_password',
  'user.create', 'user.update', 'user.delete',
  'system.log_level.set',
  'bridge.create', 'bridge.update', 'bridge.delete', 'bridge.events',
  'conference.create', 'conference.update', 'conference.cancel', 'conference.terminate',
  'conference.extend', 'participant.mute', 'participant.drop',
];

const OUTCOME_CLASS = { ok: 'up', denied: 'muted-flag', failed: 'down' };
const OUTCOME_LABEL = { ok: 'OK', denied: 'Denied', failed: 'Failed' };

export default {
  path: '/audit',
  title: 'Audit log',
  roles: ['admin'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const api = ctx.api;
    let entries = [];
    let nextBeforeId = null;
    let disposed = false;
    let seq = 0;

    const fUser = field({
      label: 'User', id: 'audit-user', value: ctx.query?.get('username') ?? '', autocomplete: 'off',
      hint: 'The exact user name (or the name tried at sign-in).',
    });
    fUser.control.setAttribute('autocapitalize', 'none');
    fUser.control.setAttribute('spellcheck', 'false');
    const fAction = field({
      label: 'Action', id: 'audit-action', value: ctx.query?.get('action') ?? '', autocomplete: 'off',
      hint: 'For example user.create or bridge.update.',
    });
    const datalist = el('datalist', { id: 'audit-actions' }, KNOWN_ACTIONS.map((a) => el('option', { value: a })));
    fAction.control.setAttribute('list', datalist.id);
    fAction.append(datalist);

    const apply = el('button', { type: 'submit', class: 'primary' }, 'Apply filters');
    const clear = el('button', { type: 'button', onclick: onClear }, 'Clear filters');
    const filterForm = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log', novalidate: true },
      fUser, fAction, el('div', { class: 'actions' }, apply, clear));
    filterForm.addEventListener('submit', (event) => {
      event.preventDefault();
      syncAddress();
      reload(apply);
    });

    const error = messageBox('alert');
    const status = messageBox('status');
    status.className = 'adm-count';
    const loading = el('p', { class: 'working', hidden: true }, 'Loading entries…');

    const zone = (() => {
      try {
        return Intl.DateTimeFormat().resolvedOptions().timeZone;
      } catch {
        return '';
      }
    })();

    const auditTable = table({
      caption: zone ? `Audit entries, newest first (times in ${zone})` : 'Audit entries, newest first',
      columns: [
        { key: 'at', label: 'Time', render: (e) => formatDateTime(e.at, undefined, { seconds: true }) },
        { key: 'username', label: 'User', render: (e) => e.username ?? '—' },
        { key: 'remote_addr', label: 'Address', class: 'adm-break' },
        { key: 'action', label: 'Action', render: (e) => el('code', {}, e.action) },
        { key: 'target', label: 'Target', class: 'adm-break', render: (e) => e.target ?? '—' },
        { key: 'path', label: 'Request', class: 'adm-break adm-wide', render: (e) => el('code', { class: 'adm-break' }, `${e.method} ${e.path}`) },
        {
          key: 'status',
          label: 'Status',
          class: 'num',
          // Refusals without a session come collapsed: one row per address, action and minute.
          render: (e) => (e.count > 1
            ? `${e.status} × ${e.count} (last ${formatDateTime(e.last_at, undefined, { seconds: true })})`
            : String(e.status)),
        },
        {
          key: 'outcome',
          label: 'Outcome',
          render: (e) => el('span', { class: `badge ${OUTCOME_CLASS[e.outcome] ?? ''}` }, OUTCOME_LABEL[e.outcome] ?? e.outcome),
        },
      ],
      rows: [],
      empty: 'No entries match these filters.',
      rowKey: (e) => e.id,
    });
    cardTable(auditTable);

    const older = el('button', { type: 'button', hidden: true, onclick: (event) => loadMore(event.currentTarget) }, 'Older entries');
    const refresh = el('button', { type: 'button', onclick: (event) => reload(event.currentTarget) }, 'Show newest');

    function filters() {
      return { username: fUser.value.trim(), action: fAction.value.trim() };
    }

    /** Keeps the address in step with the filters without leaving the page. */
    function syncAddress() {
      const { username, action } = filters();
      const query = new URLSearchParams();
      if (username) query.set('username', username);
      if (action) query.set('action', action);
      const text = query.toString();
      history.replaceState(history.state, '', `${location.pathname}${text ? `?${text}` : ''}`);
    }

    function describe() {
      const { username, action } = filters();
      const parts = [];
      if (username) parts.push(`user ${username}`);
      if (action) parts.push(`action ${action}`);
      const n = entries.length;
      const count = `${n} ${n === 1 ? 'entry' : 'entries'}`;
      const more = nextBeforeId ? '; older ones follow' : '';
      return parts.length ? `Showing ${count} for ${parts.join(' and ')}${more}.` : `Showing ${count}${more}.`;
    }

    async function fetchPage(beforeId) {
      const { username, action } = filters();
      return api.get('/audit', { limit: PAGE_SIZE, before_id: beforeId ?? undefined, username, action });
    }

    async function reload(button) {
      const my = ++seq;
      error.clear();
      const work = async () => {
        loading.hidden = false;
        try {
          const answer = await fetchPage(null);
          if (disposed || my !== seq) return;
          entries = answer?.entries ?? [];
          nextBeforeId = answer?.next_before_id ?? null;
          auditTable.update(entries);
          older.hidden = !nextBeforeId;
          status.show(describe());
        } catch (e) {
          if (disposed || my !== seq) return;
          error.show(`The audit log could not be loaded: ${sentence(e.message)}`);
        } finally {
          if (my === seq) loading.hidden = true;
        }
      };
      if (button) await busy(button, work);
      else await work();
    }

    async function loadMore(button) {
      if (!nextBeforeId) return;
      const my = ++seq;
      error.clear();
      await busy(button, async () => {
        try {
          const answer = await fetchPage(nextBeforeId);
          if (disposed || my !== seq) return;
          const firstNew = entries.length;
          entries = entries.concat(answer?.entries ?? []);
          nextBeforeId = answer?.next_before_id ?? null;
          auditTable.update(entries);
          older.hidden = !nextBeforeId;
          status.show(describe());
          // Keep the keyboard user where the new rows start.
          const row = auditTable.table.tBodies[0]?.rows[firstNew];
          const cell = row?.cells[0];
          if (cell) {
            cell.tabIndex = -1;
            cell.focus();
          }
        } catch (e) {
          if (disposed || my !== seq) return;
          error.show(`The older entries could not be loaded: ${sentence(e.message)}`);
        }
      });
    }

    function onClear() {
      fUser.value = '';
      fAction.value = '';
      syncAddress();
      reload(clear);
    }

    main.append(
      el('section', { class: 'panel', 'aria-label': 'Filters' },
        el('p', { class: 'muted' }, 'Every request that changed something, refused ones and failed sign-ins included. Request bodies (and so passwords) are never recorded.'),
        filterForm),
      el('section', { class: 'panel adm-table-panel', 'aria-label': 'Audit entries' },
        el('div', { class: 'toolbar' }, refresh, el('span', { class: 'spacer' }), status),
        error, loading, auditTable,
        el('div', { class: 'actions adm-more' }, older)),
    );

    await reload();
    return () => {
      disposed = true;
    };
  },
};
