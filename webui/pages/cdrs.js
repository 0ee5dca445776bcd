// Call detail records: one per conference and one per participant leg, filtered by a time window
// (and optionally one conference), paged with the server's next_cursor, downloadable as CSV with
// the same filters.

import {
  busy, el, field, formatDateTime, formatDuration, formatTime, messageBox, srOnly, table, uniqueId,
} from '../lib/ui.js';
import { addDays, browserTimeZone, localDate, zonedToIso } from '../lib/time.js';

const PAGE_SIZE = 50;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export default {
  path: '/cdrs',
  title: 'CDRs',
  roles: ['admin'],
  nav: true,

  async mount(main, ctx) {
    const { api } = ctx;
    const zone = browserTimeZone();
    const today = localDate(zone);
    const q = ctx.query;

    const from = field({ label: 'From date', id: 'cdr-from', type: 'date', value: DATE.test(q.get('from') ?? '') ? q.get('from') : addDays(today, -7) });
    const to = field({ label: 'To date', id: 'cdr-to', type: 'date', value: DATE.test(q.get('to') ?? '') ? q.get('to') : today });
    const conferenceId = field({ label: 'Conference id (optional)', id: 'cdr-conference', type: 'number', min: 1, value: q.get('conference_id') ?? '' });
    const apply = el('button', { type: 'submit', class: 'primary' }, 'Show records');
    const filterError = messageBox('alert');
    const filterForm = el('form', { class: 'filters', novalidate: true, 'aria-label': 'Filter the records' },
      from, to, conferenceId, apply);

    /** The API query for the current filters, or null after marking what is wrong. */
    function filters() {
      filterError.clear();
      for (const x of [from, to, conferenceId]) x.setError('');
      const problems = [];
      if (from.value && !DATE.test(from.value)) problems.push([from, 'Choose a start date.']);
      if (to.value && !DATE.test(to.value)) problems.push([to, 'Choose an end date.']);
      if (from.value && to.value && from.value > to.value) problems.push([to, 'The end date is before the start date.']);
      const cid = conferenceId.value.trim();
      if (cid && !/^[1-9][0-9]{0,17}$/.test(cid)) problems.push([conferenceId, 'A conference id is a whole number of 1 or more.']);
      if (problems.length) {
        for (const [f, text] of problems) f.setError(text);
        filterError.show(problems[0][1]);
        problems[0][0].control.focus();
        return null;
      }
      return {
        from: from.value ? zonedToIso(from.value, '00:00', zone) : undefined,
        to: to.value ? zonedToIso(addDays(to.value, 1), '00:00', zone) : undefined,
        conference_id: cid || undefined,
      };
    }

    function pager({ title, path, arrayName, columns, empty }) {
      const headingId = uniqueId('cdr');
      const status = el('p', { class: 'muted', role: 'status' });
      const error = messageBox('alert');
      const more = el('button', { type: 'button', hidden: true }, 'Show more', srOnly(` ${title.toLowerCase()}`));
      const csv = el('a', { class: 'button', download: '' }, 'Download CSV', srOnly(` of ${title.toLowerCase()}`));
      const t = table({ caption: title, columns, empty, hideCaption: true });
      let rows = [];
      let cursor = null;
      let query = {};

      async function load(reset) {
        if (reset) {
          rows = [];
          cursor = null;
        }
        t.setAttribute('aria-busy', 'true');
        status.textContent = 'Working…';
        try {
          const answer = await api.get(path, { ...query, limit: PAGE_SIZE, cursor: reset ? undefined : cursor });
          rows = rows.concat(answer[arrayName] ?? []);
          cursor = answer.next_cursor ?? null;
          t.update(rows);
          more.hidden = !cursor;
          error.clear();
          status.textContent = `${rows.length} record${rows.length === 1 ? '' : 's'} shown${cursor ? '; more are available' : ''}.`;
        } catch (e) {
          status.textContent = '';
          error.show(`Could not load the ${title.toLowerCase()}: ${e.message}`);
        } finally {
          t.removeAttribute('aria-busy');
        }
      }

      more.addEventListener('click', () => busy(more, () => load(false)));

      return {
        node: el('section', { class: 'panel', 'aria-labelledby': headingId },
          el('div', { class: 'toolbar' }, el('h2', { id: headingId }, title), el('span', { class: 'spacer' }), csv),
          error, status, t, el('div', { class: 'actions' }, more)),
        async show(newQuery) {
          query = newQuery;
          csv.href = api.downloadUrl(path, { ...query, format: 'csv' });
          await load(true);
        },
      };
    }

    const time = (iso) => formatDateTime(iso, zone, { seconds: true });
    const bookedFor = (r) => {
      const sameDay = localDate(zone, Date.parse(r.reserved_start)) === localDate(zone, Date.parse(r.reserved_end));
      return `${formatDateTime(r.reserved_start, zone)} – ${sameDay ? formatTime(r.reserved_end, zone) : formatDateTime(r.reserved_end, zone)}`;
    };
    const conferencesPager = pager({
      title: 'Conference records',
      path: '/cdrs/conferences',
      arrayName: 'cdrs',
      empty: 'No conference ended in this period.',
      columns: [
        { key: 'name', label: 'Conference', render: (r) => el('a', { href: `/conferences/${r.conference_id}` }, `${r.name} (${r.conference_id})`) },
        { key: 'reserved_start', label: 'Booked for', render: (r) => bookedFor(r) },
        { key: 'actual_start', label: 'Started', render: (r) => time(r.actual_start) },
        { key: 'actual_end', label: 'Ended', render: (r) => time(r.actual_end) },
        { key: 'duration_seconds', label: 'Duration', class: 'num', render: (r) => formatDuration(r.duration_seconds) },
        { key: 'peak_participants', label: 'Peak', class: 'num' },
        { key: 'legs', label: 'Legs', class: 'num' },
        { key: 'end_cause', label: 'End cause' },
        { key: 'bridge_name', label: 'Bridge' },
      ],
    });
    const legsPager = pager({
      title: 'Participant records',
      path: '/cdrs/participants',
      arrayName: 'legs',
      empty: 'No participant left a conference in this period.',
      columns: [
        { key: 'display_name', label: 'Participant', render: (r) => r.display_name || `(no name, id ${r.participant_id})` },
        { key: 'conference_name', label: 'Conference', render: (r) => `${r.conference_name} (${r.conference_id})` },
        { key: 'joined_at', label: 'Joined', render: (r) => time(r.joined_at) },
        { key: 'left_at', label: 'Left', render: (r) => time(r.left_at) },
        { key: 'duration_seconds', label: 'Duration', class: 'num', render: (r) => formatDuration(r.duration_seconds) },
        { key: 'end_reason', label: 'End reason' },
      ],
    });

    async function showAll() {
      const query = filters();
      if (!query) return;
      const params = new URLSearchParams();
      if (from.value) params.set('from', from.value);
      if (to.value) params.set('to', to.value);
      if (query.conference_id) params.set('conference_id', query.conference_id);
      history.replaceState(null, '', `/cdrs?${params}`);
      await Promise.all([conferencesPager.show(query), legsPager.show(query)]);
    }

    filterForm.addEventListener('submit', (event) => {
      event.preventDefault();
      busy(apply, showAll);
    });

    const filterHeadingId = uniqueId('filters');
    main.append(
      el('section', { class: 'panel', 'aria-labelledby': filterHeadingId },
        el('h2', { id: filterHeadingId }, 'Filters'),
        el('p', { class: 'muted' }, `Call detail records (CDRs) that ended from the start of the first day to the end of the last, in ${zone}.`),
        filterForm, filterError),
      conferencesPager.node,
      legsPager.node);
    await showAll();
  },
};
