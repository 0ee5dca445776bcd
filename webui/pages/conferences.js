// Conferences: a day or week list with previous/next, and the form that schedules (or edits) a
// booking — once or as a daily/weekly series, in any time zone, started now or later.

import {
  busy, confirmAction, debounce, el, field, formatDateTime, formatTime, messageBox, plainTimes, srOnly,
  table, uniqueId,
} from '../lib/ui.js';
import {
  addDays, browserTimeZone, isoToZoned, localDate, timeZones, weekdayOf, zonedToIso,
} from '../lib/time.js';

const WEEKDAYS = [
  ['MO', 'Monday'], ['TU', 'Tuesday'], ['WE', 'Wednesday'], ['TH', 'Thursday'],
  ['FR', 'Friday'], ['SA', 'Saturday'], ['SU', 'Sunday'],
];

const STATE_LABELS = {
  scheduled: 'Scheduled',
  starting: 'Starting',
  active: 'Active',
  ended: 'Ended',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

export function stateBadge(state) {
  return el('span', { class: `badge ${state}` }, STATE_LABELS[state] ?? state);
}

const isLive = (c) => c.state === 'starting' || c.state === 'active';

/** Which form field a server error is about, from its code and message. */
function fieldOfError(error) {
  const m = `${error.code ?? ''} ${error.message ?? ''}`.toLowerCase();
  if (/time_zone/.test(m)) return 'timeZone';
  if (/recurrence\.(count)/.test(m) || /too_many_occurrences/.test(m)) return 'count';
  if (/recurrence\.until|before "until"/.test(m)) return 'until';
  if (/recurrence\.interval/.test(m)) return 'interval';
  if (/recurrence/.test(m)) return 'repeat';
  if (/duration|at most 7 days|end must be after/.test(m)) return 'duration';
  if (/\bpin\b/.test(m)) return 'pin';
  if (/start_in_past|\bstart\b/.test(m)) return 'date';
  if (/"name"|\bname\b/.test(m) && /field/.test(m)) return 'name';
  if (/^invalid_field .*ports|"ports"|ports must/.test(m)) return 'ports';
  return null;
}

export default {
  path: '/conferences',
  title: 'Conferences',
  roles: ['admin'],
  nav: true,

  async mount(main, ctx) {
    const { api } = ctx;
    const viewerZone = browserTimeZone();
    const isAdmin = ctx.hasRole('admin');

    let view = ctx.query.get('view') === 'week' ? 'week' : 'day';
    let anchor = /^\d{4}-\d{2}-\d{2}$/.test(ctx.query.get('date') ?? '') ? ctx.query.get('date') : localDate(viewerZone);
    let bridges = [];
    let editing = null; // the conference being edited, or null when booking a new one
    let disposed = false;

    // ---- the list ---------------------------------------------------------------------------

    const rangeHeadingId = uniqueId('range');
    const rangeHeading = el('h2', { id: rangeHeadingId, 'aria-live': 'polite' });
    const listStatus = messageBox('status');
    const listError = messageBox('alert');
    const pageStatus = messageBox('status');
    const working = el('p', { class: 'working', hidden: true }, 'Working…');

    const dayButton = el('button', { type: 'button', 'aria-pressed': 'true', class: 'small' }, 'Day');
    const weekButton = el('button', { type: 'button', 'aria-pressed': 'false', class: 'small' }, 'Week');
    const prevButton = el('button', { type: 'button', class: 'small' }, 'Previous', srOnly(' period'));
    const todayButton = el('button', { type: 'button', class: 'small' }, 'Today');
    const nextButton = el('button', { type: 'button', class: 'small' }, 'Next', srOnly(' period'));
    const newButton = isAdmin
      ? el('button', { type: 'button', class: 'primary', 'aria-expanded': 'false' }, 'New booking')
      : null;

    function rowActions(c) {
      const out = el('div', { class: 'actions' });
      if (!isAdmin) return out;
      if (c.state === 'scheduled' || isLive(c)) {
        out.append(el('button', {
          type: 'button', class: 'small', dataset: { focusKey: `edit-${c.id}` },
          onclick: () => openForm(c),
        }, 'Edit', srOnly(` ${c.name}`)));
      }
      if (c.state === 'scheduled' || c.state === 'starting') {
        const cancel = el('button', {
          type: 'button', class: 'small danger', dataset: { focusKey: `cancel-${c.id}` },
        }, 'Cancel', srOnly(` ${c.name}`));
        cancel.addEventListener('click', () => cancelBooking(c, cancel, false));
        out.append(cancel);
        if (c.series_id) {
          const cancelSeries = el('button', {
            type: 'button', class: 'small danger', dataset: { focusKey: `cancel-series-${c.id}` },
          }, 'Cancel series', srOnly(` ${c.name}`));
          cancelSeries.addEventListener('click', () => cancelBooking(c, cancelSeries, true));
          out.append(cancelSeries);
        }
      }
      out.append(el('a', { href: api.downloadUrl(`/conferences/${c.id}.ics`), class: 'button small', download: `conference-${c.id}.ics` },
        'Calendar', srOnly(` file for ${c.name}`)));
      return out;
    }

    const zoneNote = el('p', { class: 'muted' }, `Times are in your time zone, ${viewerZone}.`);
    const list = table({
      caption: 'Conferences in this period',
      hideCaption: true,
      empty: 'No conferences in this period.',
      rowKey: (c) => c.id,
      columns: [
        { key: 'name', label: 'Name', render: (c) => el('a', { href: `/conferences/${c.id}` }, c.name) },
        {
          key: 'start', label: 'Starts',
          render: (c) => {
            const text = view === 'week'
              ? formatDateTime(c.start, viewerZone)
              : formatTime(c.start, viewerZone);
            if (c.time_zone === viewerZone) return text;
            return el('span', {}, text, el('br'), el('span', { class: 'muted' },
              `${formatTime(c.start, c.time_zone)} ${c.time_zone}`));
          },
        },
        { key: 'end', label: 'Ends', render: (c) => formatTime(c.end, viewerZone) },
        { key: 'state', label: 'State', render: (c) => stateBadge(c.state) },
        { key: 'ports', label: 'Ports', class: 'num' },
        { key: 'participant_count', label: 'Participants', class: 'num', render: (c) => (isLive(c) ? String(c.participant_count) : '—') },
        { key: 'bridge_name', label: 'Bridge', render: (c) => c.bridge_name ?? '—' },
        { key: 'series_id', label: 'Repeats', render: (c) => (c.recurrence ? describeRecurrence(c.recurrence) : 'No') },
        { key: 'actions', label: 'Actions', render: rowActions },
      ],
    });

    function describeRecurrence(r) {
      const every = r.interval > 1 ? `every ${r.interval} ${r.frequency === 'daily' ? 'days' : 'weeks'}` : r.frequency;
      const names = Object.fromEntries(WEEKDAYS.map(([code, label]) => [code, label.slice(0, 3)]));
      const days = r.frequency === 'weekly' && r.weekdays?.length ? ` on ${r.weekdays.map((d) => names[d] ?? d).join(', ')}` : '';
      return `${every[0].toUpperCase()}${every.slice(1)}${days}`;
    }

    function range() {
      let start = anchor;
      let days = 1;
      if (view === 'week') {
        start = addDays(anchor, -weekdayOf(anchor));
        days = 7;
      }
      return {
        startDate: start,
        endDate: addDays(start, days - 1),
        from: zonedToIso(start, '00:00', viewerZone),
        to: zonedToIso(addDays(start, days), '00:00', viewerZone),
      };
    }

    function describeRange(r) {
      const dateFmt = (d, opts) => new Intl.DateTimeFormat(undefined, { timeZone: 'UTC', ...opts })
        .format(Date.parse(`${d}T12:00:00Z`));
      if (view === 'day') return dateFmt(r.startDate, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
      return `Week of ${dateFmt(r.startDate, { day: 'numeric', month: 'long' })} to ${dateFmt(r.endDate, { day: 'numeric', month: 'long', year: 'numeric' })}`;
    }

    let loadSeq = 0;
    async function loadList() {
      const seq = ++loadSeq;
      const r = range();
      rangeHeading.textContent = describeRange(r);
      list.table.querySelector('caption').textContent =
        `Conferences ${view === 'day' ? 'on' : 'in the'} ${describeRange(r).replace(/^Week of/, 'week of')}`;
      dayButton.setAttribute('aria-pressed', String(view === 'day'));
      weekButton.setAttribute('aria-pressed', String(view === 'week'));
      const url = `/conferences?view=${view}&date=${anchor}`;
      if (location.pathname === '/conferences' && `${location.pathname}${location.search}` !== url) {
        history.replaceState(null, '', url);
      }
      list.setAttribute('aria-busy', 'true');
      try {
        const answer = await api.get('/conferences', { from: r.from, to: r.to, limit: 1000 });
        if (seq !== loadSeq || disposed) return;
        listError.clear();
        list.update(answer.conferences ?? []);
      } catch (error) {
        if (seq !== loadSeq || disposed) return;
        listError.show(`Could not load the conferences: ${error.message}`);
      } finally {
        if (seq === loadSeq) list.removeAttribute('aria-busy');
      }
    }

    dayButton.addEventListener('click', () => { view = 'day'; loadList(); });
    weekButton.addEventListener('click', () => { view = 'week'; loadList(); });
    prevButton.addEventListener('click', () => { anchor = addDays(anchor, view === 'week' ? -7 : -1); loadList(); });
    nextButton.addEventListener('click', () => { anchor = addDays(anchor, view === 'week' ? 7 : 1); loadList(); });
    todayButton.addEventListener('click', () => { anchor = localDate(viewerZone); loadList(); });

    async function cancelBooking(c, button, series) {
      pageStatus.clear();
      listError.clear();
      const ok = await confirmAction({
        title: series ? 'Cancel the series?' : 'Cancel this conference?',
        message: series
          ? `Every occurrence of "${c.name}" from this one on that has not begun will be cancelled.`
          : `"${c.name}" on ${formatDateTime(c.start, viewerZone)} will be cancelled and its ports freed.`,
        confirmLabel: series ? 'Cancel series' : 'Cancel conference',
        cancelLabel: 'Keep it',
      });
      if (!ok) return;
      await busy(button, async () => {
        try {
          const answer = await api.del(`/conferences/${c.id}`, series ? { series: 'true' } : undefined);
          const n = answer?.cancelled?.length ?? 1;
          pageStatus.show(series ? `Cancelled ${n} occurrence${n === 1 ? '' : 's'} of "${c.name}".` : `Cancelled "${c.name}".`);
          await loadList();
        } catch (error) {
          listError.show(`Could not cancel "${c.name}": ${error.message}`);
        }
      });
    }

    // ---- the booking form -------------------------------------------------------------------

    const zoneOptions = timeZones([viewerZone]).map((z) => ({ value: z, label: z }));
    const f = {
      name: field({ label: 'Name', id: 'conf-name', required: true, maxlength: 200, autocomplete: 'off' }),
      startNow: field({ label: 'Start now', id: 'conf-start-now', type: 'checkbox', hint: 'The room opens at once; the date and time below are ignored.' }),
      date: field({ label: 'Start date', id: 'conf-date', type: 'date', required: true }),
      time: field({ label: 'Start time', id: 'conf-time', type: 'time', required: true }),
      duration: field({ label: 'Duration (minutes)', id: 'conf-duration', type: 'number', min: 1, max: 10080, value: 60, required: true }),
      timeZone: field({ label: 'Time zone', id: 'conf-tz', type: 'select', options: zoneOptions, value: viewerZone, hint: 'The start date and time are in this zone; a series keeps this wall-clock time.' }),
      ports: field({ label: 'Ports', id: 'conf-ports', type: 'number', min: 1, max: 100000, value: 4, required: true, hint: 'How many participants can be in the room at once.' }),
      pin: field({ label: 'PIN (optional)', id: 'conf-pin', inputmode: 'numeric', pattern: '[0-9]{4,12}', maxlength: 12, autocomplete: 'off', hint: '4 to 12 digits that participants enter to join.' }),
      bridge: field({ label: 'Bridge (optional)', id: 'conf-bridge', type: 'select', options: [{ value: '', label: 'Any bridge (least loaded)' }] }),
      repeat: field({
        label: 'Repeat', id: 'conf-repeat', type: 'select',
        options: [{ value: 'none', label: 'Does not repeat' }, { value: 'daily', label: 'Daily' }, { value: 'weekly', label: 'Weekly' }],
        value: 'none',
      }),
      interval: field({ label: 'Repeat every (days)', id: 'conf-interval', type: 'number', min: 1, max: 52, value: 1 }),
      ends: field({
        label: 'Series ends', id: 'conf-ends', type: 'select',
        options: [{ value: 'count', label: 'After a number of occurrences' }, { value: 'until', label: 'On a date' }],
        value: 'count',
      }),
      count: field({ label: 'Number of occurrences', id: 'conf-count', type: 'number', min: 1, max: 1000, value: 10 }),
      until: field({ label: 'Last date', id: 'conf-until', type: 'date' }),
      scope: field({
        label: 'Apply the changes to', id: 'conf-scope', type: 'select',
        options: [{ value: 'one', label: 'This occurrence only' }, { value: 'series', label: 'This and every later occurrence' }],
        value: 'one',
        hint: 'Later occurrences keep their own dates and move by the same local time.',
      }),
    };
    const weekdayBoxes = WEEKDAYS.map(([code, label]) =>
      field({ label, id: `conf-wd-${code}`, type: 'checkbox', name: 'weekdays' }));
    const weekdaysSet = el('fieldset', { class: 'weekday-set' },
      el('legend', {}, 'On these weekdays'),
      el('div', { class: 'weekdays' }, weekdayBoxes));
    const weekdaysError = el('p', { class: 'field-error', id: 'conf-wd-error', hidden: true });
    weekdaysSet.append(weekdaysError);
    const recurrenceSet = el('fieldset', { hidden: true },
      el('legend', {}, 'Recurrence'),
      el('div', { class: 'stack' },
        el('div', { class: 'grid-3' }, f.interval, f.ends, f.count, f.until),
        weekdaysSet));

    const formHeadingId = uniqueId('form-heading');
    const formHeading = el('h2', { id: formHeadingId, tabindex: '-1' }, 'Schedule conference');
    const formError = messageBox('alert');
    const submitButton = el('button', { type: 'submit', class: 'primary' }, 'Schedule');
    const closeButton = el('button', { type: 'button' }, 'Close form');
    const form = el('form', { class: 'stack wide', novalidate: true, 'aria-labelledby': formHeadingId },
      formHeading,
      el('div', { class: 'grid-2' }, f.name, f.ports),
      f.startNow,
      el('div', { class: 'grid-3' }, f.date, f.time, f.duration),
      el('div', { class: 'grid-2' }, f.timeZone, f.bridge),
      el('div', { class: 'grid-2' }, f.pin, f.repeat),
      f.scope,
      recurrenceSet,
      formError,
      el('div', { class: 'actions' }, submitButton, closeButton));
    const formPanel = el('section', { class: 'panel', hidden: true, id: 'booking-form' }, form);
    newButton?.setAttribute('aria-controls', 'booking-form');

    function syncForm() {
      const now = f.startNow.value;
      f.date.hidden = now;
      f.time.hidden = now;
      f.date.control.disabled = now;
      f.time.control.disabled = now;
      const rep = f.repeat.value;
      recurrenceSet.hidden = rep === 'none' || Boolean(editing);
      weekdaysSet.hidden = rep !== 'weekly';
      f.interval.querySelector('label').textContent = rep === 'weekly' ? 'Repeat every (weeks)' : 'Repeat every (days)';
      f.count.hidden = f.ends.value !== 'count';
      f.until.hidden = f.ends.value !== 'until';
    }
    f.startNow.control.addEventListener('change', () => {
      if (f.startNow.value && f.repeat.value !== 'none') f.repeat.value = 'none';
      syncForm();
    });
    f.repeat.control.addEventListener('change', () => {
      if (f.repeat.value === 'weekly' && !weekdayBoxes.some((b) => b.value) && f.date.value) {
        weekdayBoxes[weekdayOf(f.date.value)].value = true;
      }
      if (f.repeat.value !== 'none') f.startNow.value = false;
      syncForm();
    });
    f.ends.control.addEventListener('change', syncForm);

    function clearErrors() {
      formError.clear();
      for (const x of Object.values(f)) x.setError('');
      weekdaysError.hidden = true;
    }

    function fillBridges() {
      const select = f.bridge.control;
      const keep = select.value;
      select.replaceChildren(el('option', { value: '' }, 'Any bridge (least loaded)'));
      for (const b of bridges) {
        const note = b.state !== 'enabled' ? b.state : b.health;
        select.append(el('option', { value: String(b.id) }, `${b.name} (${note}, ${b.capacity_ports} ports)`));
      }
      select.value = keep;
    }

    function defaultStart() {
      // The next quarter hour in the chosen zone, at least 5 minutes ahead.
      const t = Math.ceil((Date.now() + 5 * 60_000) / (15 * 60_000)) * 15 * 60_000;
      return isoToZoned(new Date(t).toISOString(), f.timeZone.value || viewerZone);
    }

    function openForm(conference = null) {
      editing = conference;
      clearErrors();
      form.reset();
      for (const b of weekdayBoxes) b.value = false;
      const live = conference && isLive(conference);
      if (conference) {
        formHeading.textContent = `Edit conference "${conference.name}"`;
        submitButton.textContent = 'Save changes';
        f.name.value = conference.name;
        f.timeZone.value = conference.time_zone;
        const [d, t] = conference.start_local.split('T');
        f.date.value = d;
        f.time.value = t.slice(0, 5);
        f.duration.value = Math.round((Date.parse(conference.end) - Date.parse(conference.start)) / 60000);
        f.ports.value = conference.ports;
        f.pin.value = conference.pin ?? '';
        f.bridge.value = conference.bridge_id ? String(conference.bridge_id) : '';
        f.repeat.value = 'none';
      } else {
        formHeading.textContent = 'Schedule conference';
        submitButton.textContent = 'Schedule';
        f.timeZone.value = viewerZone;
        const s = defaultStart();
        f.date.value = s.date;
        f.time.value = s.time;
        f.duration.value = 60;
        f.ports.value = 4;
        f.interval.value = 1;
        f.count.value = 10;
        f.repeat.value = 'none';
        f.ends.value = 'count';
      }
      // What PATCH cannot change is shown but locked.
      f.startNow.hidden = Boolean(conference);
      f.timeZone.control.disabled = Boolean(conference);
      f.bridge.control.disabled = Boolean(conference);
      f.repeat.hidden = Boolean(conference);
      // A series can be changed from an occurrence that has not begun.
      f.scope.hidden = !(conference && conference.series_id && conference.state === 'scheduled');
      f.scope.value = 'one';
      f.pin.control.disabled = Boolean(live);
      syncForm();
      f.date.control.disabled = Boolean(live);
      f.time.control.disabled = Boolean(live);
      formPanel.hidden = false;
      newButton?.setAttribute('aria-expanded', 'true');
      formHeading.focus();
    }

    function closeForm() {
      formPanel.hidden = true;
      editing = null;
      newButton?.setAttribute('aria-expanded', 'false');
      newButton?.focus();
    }

    newButton?.addEventListener('click', () => {
      if (!formPanel.hidden && !editing) closeForm();
      else openForm(null);
    });
    closeButton.addEventListener('click', closeForm);

    /** Checks the form; returns the request body, or null after marking what is wrong. */
    function readForm() {
      clearErrors();
      const problems = [];
      const bad = (fieldName, text) => {
        f[fieldName].setError(text);
        problems.push([fieldName, text]);
      };
      const name = f.name.value.trim();
      if (!name) bad('name', 'Enter a name for the conference.');
      const startNow = !editing && f.startNow.value;
      if (!startNow) {
        if (!f.date.value) bad('date', 'Choose the start date.');
        if (!f.time.value) bad('time', 'Choose the start time.');
      }
      const duration = Number(f.duration.value);
      if (!Number.isInteger(duration) || duration < 1 || duration > 10080) {
        bad('duration', 'The duration is a whole number of minutes from 1 to 10080 (7 days).');
      }
      const ports = Number(f.ports.value);
      if (!Number.isInteger(ports) || ports < 1 || ports > 100000) bad('ports', 'Ports is a whole number from 1 to 100000.');
      const pin = f.pin.value.trim();
      if (pin && !/^[0-9]{4,12}$/.test(pin)) bad('pin', 'The PIN is 4 to 12 digits, or leave it empty.');
      const tz = f.timeZone.value;

      let recurrence = null;
      if (!editing && f.repeat.value !== 'none') {
        const interval = Number(f.interval.value);
        if (!Number.isInteger(interval) || interval < 1 || interval > 52) bad('interval', 'Repeat every 1 to 52.');
        recurrence = { frequency: f.repeat.value, interval };
        if (f.repeat.value === 'weekly') {
          recurrence.weekdays = WEEKDAYS.filter((_, i) => weekdayBoxes[i].value).map(([code]) => code);
          if (recurrence.weekdays.length === 0) {
            weekdaysError.textContent = 'Choose at least one weekday.';
            weekdaysError.hidden = false;
            problems.push(['weekdays', 'Choose at least one weekday.']);
          }
        }
        if (f.ends.value === 'count') {
          const count = Number(f.count.value);
          if (!Number.isInteger(count) || count < 1) bad('count', 'Enter how many times it happens (1 or more).');
          recurrence.count = count;
        } else if (!f.until.value) {
          bad('until', 'Choose the date of the last occurrence.');
        } else {
          recurrence.until = zonedToIso(f.until.value, '23:59:59', tz);
        }
      }

      if (problems.length) {
        formError.show(problems.length === 1 ? problems[0][1] : `Correct the ${problems.length} fields marked below.`);
        const first = problems[0][0];
        (first === 'weekdays' ? weekdayBoxes[0].control : f[first].control).focus();
        return null;
      }

      if (editing) {
        const body = {};
        if (name !== editing.name) body.name = name;
        if (!isLive(editing)) {
          const start = zonedToIso(f.date.value, f.time.value, editing.time_zone);
          if (Date.parse(start) !== Date.parse(editing.start)) body.start = start;
          if (pin && pin !== (editing.pin ?? '')) body.pin = pin;
        }
        const oldDuration = Math.round((Date.parse(editing.end) - Date.parse(editing.start)) / 60000);
        if (duration !== oldDuration || body.start) body.duration_minutes = duration;
        if (ports !== editing.ports) body.ports = ports;
        return body;
      }

      const body = { name, ports, duration_minutes: duration, time_zone: tz };
      if (startNow) body.start_now = true;
      else body.start = zonedToIso(f.date.value, f.time.value, tz);
      if (pin) body.pin = pin;
      if (f.bridge.value) body.bridge_id = Number(f.bridge.value);
      if (recurrence) body.recurrence = recurrence;
      return body;
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      pageStatus.clear();
      const body = readForm();
      if (!body) return;
      await busy(submitButton, async () => {
        try {
          if (editing) {
            if (Object.keys(body).length === 0) {
              formError.show('Nothing has changed.');
              return;
            }
            if (!f.scope.hidden && f.scope.value === 'series') {
              const answer = await api.patch(`/conferences/${editing.id}?series=true`, body);
              const n = answer.changed.length;
              const updated = answer.conference;
              pageStatus.show(`Saved ${n} occurrence${n === 1 ? '' : 's'} of "${updated.name}", from ${formatDateTime(updated.start, viewerZone)} on.`);
              anchor = localDate(viewerZone, Date.parse(updated.start));
            } else {
              const updated = await api.patch(`/conferences/${editing.id}`, body);
              pageStatus.show(`Saved "${updated.name}": ${formatDateTime(updated.start, viewerZone)} to ${formatTime(updated.end, viewerZone)}, ${updated.ports} ports.`);
              anchor = localDate(viewerZone, Date.parse(updated.start));
            }
          } else {
            const answer = await api.post('/conferences', body);
            const booked = answer.conferences ?? [answer];
            const first = booked[0];
            pageStatus.show(booked.length > 1
              ? `Scheduled "${first.name}": ${booked.length} occurrences, the first on ${formatDateTime(first.start, viewerZone)}.`
              : `Scheduled "${first.name}" on ${formatDateTime(first.start, viewerZone)} (${first.time_zone}), room ${first.room}, on bridge ${first.bridge_name ?? '—'}.`);
            anchor = localDate(viewerZone, Date.parse(first.start));
          }
          formPanel.hidden = true;
          editing = null;
          newButton?.setAttribute('aria-expanded', 'false');
          await loadList();
          pageStatus.focus?.();
        } catch (error) {
          const which = fieldOfError(error);
          if (which && f[which]) f[which].setError(plainTimes(error.message, viewerZone));
          const verb = editing ? 'Could not save the changes' : 'Could not schedule the conference';
          formError.show(`${verb}: ${plainTimes(error.message, viewerZone)}`);
        }
      });
    });
    pageStatus.setAttribute('tabindex', '-1');

    // ---- layout -----------------------------------------------------------------------------

    main.append(
      el('div', { class: 'toolbar' },
        newButton,
        el('span', { class: 'spacer' }),
        el('div', { class: 'actions', role: 'group', 'aria-label': 'Period' }, dayButton, weekButton),
        el('div', { class: 'actions', role: 'group', 'aria-label': 'Move through the calendar' }, prevButton, todayButton, nextButton)),
      pageStatus,
      formPanel,
      el('section', { class: 'panel', 'aria-labelledby': rangeHeadingId }, rangeHeading, zoneNote, listError, listStatus, working, list));

    const refresh = debounce(loadList, 300);
    ctx.events.on('conference', refresh);
    ctx.events.on('open', refresh);

    const jobs = [loadList()];
    if (isAdmin) {
      jobs.push(api.get('/bridges').then((answer) => {
        bridges = answer.bridges ?? [];
        fillBridges();
      }).catch(() => {}));
    }
    await Promise.all(jobs);

    const editId = ctx.query.get('edit');
    if (isAdmin && editId) {
      try {
        openForm(await api.get(`/conferences/${encodeURIComponent(editId)}`));
      } catch (error) {
        listError.show(`Could not open conference ${editId} for editing: ${error.message}`);
      }
    }

    return () => {
      disposed = true;
      refresh.cancel();
    };
  },
};
