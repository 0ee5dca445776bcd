// The conference monitor (/conferences/:id): details, the live participant table fed by the event
// stream, mute/unmute and drop per participant, extend, terminate (confirmed), the .ics file.

import {
  busy, confirmAction, debounce, el, field, formatDateTime, formatDuration, formatTime, messageBox,
  plainTimes, srOnly, table, uniqueId,
} from '../lib/ui.js';
import { browserTimeZone } from '../lib/time.js';
import { stateBadge } from './conferences.js';

const isLive = (c) => c.state === 'starting' || c.state === 'active';

export default {
  path: '/conferences/:id',
  title: 'Conference',
  roles: ['admin'],
  nav: false,

  async mount(main, ctx) {
    const { api } = ctx;
    const id = ctx.params.id;
    const viewerZone = browserTimeZone();
    const isAdmin = ctx.hasRole('admin');
    let conference = null;
    let disposed = false;

    const loadError = messageBox('alert');
    const actionError = messageBox('alert');
    const actionStatus = messageBox('status');
    const participantError = messageBox('alert');
    const participantStatus = messageBox('status');
    const loading = el('p', { class: 'working', role: 'status' }, 'Loading the conference…');

    // ---- details ----------------------------------------------------------------------------

    const detailsHeadingId = uniqueId('details');
    const details = el('dl', { class: 'details' });
    const endedNote = el('p', { class: 'message notice', hidden: true });

    function renderDetails(c) {
      const row = (term, value) => [el('dt', {}, term), el('dd', {}, value ?? '—')];
      const zoneNote = c.time_zone !== viewerZone ? ` (${formatDateTime(c.start, c.time_zone)} ${c.time_zone})` : '';
      details.replaceChildren(...[
        row('State', stateBadge(c.state)),
        row('Starts', `${formatDateTime(c.start, viewerZone)}${zoneNote}`),
        row('Ends', formatDateTime(c.end, viewerZone)),
        row('Time zone', c.time_zone),
        row('Room', String(c.room)),
        row('PIN', c.pin ?? 'none'),
        row('Ports', String(c.ports)),
        row('Bridge', c.bridge_name ?? '—'),
        row('Booked by', c.owner),
        c.recurrence ? row('Series', `part of series ${c.series_id}`) : null,
        row('Started at', c.actual_start ? formatDateTime(c.actual_start, viewerZone, { seconds: true }) : '—'),
        c.actual_end ? row('Ended at', formatDateTime(c.actual_end, viewerZone, { seconds: true })) : null,
        c.end_cause ? row('End cause', c.end_cause) : null,
        row('Peak participants', String(c.peak_participants)),
      ].flat().filter(Boolean));
      if (!isLive(c) && c.state !== 'scheduled') {
        endedNote.replaceChildren(
          `This conference is ${c.state}${c.end_cause ? ` (${c.end_cause})` : ''}. `,
          el('a', { href: `/cdrs?conference_id=${c.id}` }, 'See its call detail records'), '.');
        endedNote.hidden = false;
      } else {
        endedNote.hidden = true;
      }
    }

    // ---- actions ----------------------------------------------------------------------------

    const extendField = field({ label: 'Extend by (minutes)', id: 'extend-minutes', type: 'number', min: 1, max: 1440, value: 15 });
    const extendButton = el('button', { type: 'submit' }, 'Extend');
    const extendForm = el('form', { class: 'filters', novalidate: true, 'aria-label': 'Extend the conference' }, extendField, extendButton);
    const terminateButton = el('button', { type: 'button', class: 'danger' }, 'Terminate');
    const cancelButton = el('button', { type: 'button', class: 'danger' }, 'Cancel booking');
    const editLink = el('a', { href: `/conferences?edit=${encodeURIComponent(id)}`, class: 'button' }, 'Edit booking');
    const icsLink = el('a', { href: api.downloadUrl(`/conferences/${encodeURIComponent(id)}.ics`), class: 'button', download: `conference-${id}.ics` },
      'Calendar file (.ics)');
    const actionsHeadingId = uniqueId('actions');
    const actionsPanel = el('section', { class: 'panel', 'aria-labelledby': actionsHeadingId, 'data-busy-scope': '' },
      el('h2', { id: actionsHeadingId }, 'Actions'),
      el('div', { class: 'stack wide' },
        extendForm,
        el('div', { class: 'actions' }, editLink, cancelButton, terminateButton, icsLink),
        actionError, actionStatus));

    function renderActions(c) {
      const live = isLive(c);
      const open = live || c.state === 'scheduled';
      extendForm.hidden = !open;
      editLink.hidden = !open;
      terminateButton.hidden = !live;
      cancelButton.hidden = !(c.state === 'scheduled' || c.state === 'starting');
    }

    extendForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      actionError.clear();
      actionStatus.clear();
      extendField.setError('');
      const minutes = Number(extendField.value);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
        extendField.setError('Enter whole minutes from 1 to 1440.');
        actionError.show('Enter whole minutes from 1 to 1440.');
        extendField.control.focus();
        return;
      }
      await busy(extendButton, async () => {
        try {
          const c = await api.post(`/conferences/${id}/extend`, { minutes });
          show(c);
          actionStatus.show(`Extended by ${minutes} minutes: it now ends at ${formatTime(c.end, viewerZone)}.`);
        } catch (error) {
          actionError.show(`Could not extend: ${plainTimes(error.message, viewerZone)}`);
        }
      });
    });

    terminateButton.addEventListener('click', async () => {
      actionError.clear();
      actionStatus.clear();
      const n = conference?.participants?.length ?? 0;
      const ok = await confirmAction({
        title: 'Terminate this conference?',
        message: `"${conference?.name}" ends now and ${n === 1 ? 'the 1 participant' : `all ${n} participants`} in the room ${n === 1 ? 'is' : 'are'} removed. This cannot be undone.`,
        confirmLabel: 'Terminate conference',
        cancelLabel: 'Keep it running',
      });
      if (!ok) return;
      await busy(terminateButton, async () => {
        try {
          const c = await api.post(`/conferences/${id}/terminate`);
          show(c);
          actionStatus.show('Terminated. Every participant was removed and the call detail records are written.');
        } catch (error) {
          actionError.show(`Could not terminate: ${error.message}`);
        }
      });
    });

    cancelButton.addEventListener('click', async () => {
      actionError.clear();
      actionStatus.clear();
      const ok = await confirmAction({
        title: 'Cancel this booking?',
        message: `"${conference?.name}" will not take place and its ports are freed.`,
        confirmLabel: 'Cancel booking',
        cancelLabel: 'Keep it',
      });
      if (!ok) return;
      await busy(cancelButton, async () => {
        try {
          await api.del(`/conferences/${id}`);
          await reload();
          actionStatus.show('Cancelled.');
        } catch (error) {
          actionError.show(`Could not cancel: ${error.message}`);
        }
      });
    });

    // ---- participants -----------------------------------------------------------------------

    const participantsHeadingId = uniqueId('participants');
    const participantsHeading = el('h2', { id: participantsHeadingId }, 'Participants');

    function participantActions(p) {
      const box = el('div', { class: 'actions' });
      if (!isAdmin || !conference || !isLive(conference)) return box;
      const mute = el('button', {
        type: 'button', class: 'small', dataset: { focusKey: `mute-${p.id}` },
      }, p.muted ? 'Unmute' : 'Mute', srOnly(` ${p.display_name}`));
      mute.addEventListener('click', () => setMuted(p, !p.muted, mute));
      const drop = el('button', {
        type: 'button', class: 'small danger', dataset: { focusKey: `drop-${p.id}` },
      }, 'Drop', srOnly(` ${p.display_name}`));
      drop.addEventListener('click', () => dropParticipant(p, drop));
      box.append(mute, drop);
      return box;
    }

    const participants = table({
      caption: 'Participants now in the room',
      empty: 'Nobody is in the room.',
      rowKey: (p) => p.id,
      columns: [
        { key: 'display_name', label: 'Name', render: (p) => p.display_name || `(no name, id ${p.id})` },
        { key: 'joined_at', label: 'Joined', render: (p) => formatTime(p.joined_at, viewerZone) },
        { key: 'in_room', label: 'In the room for', render: (p) => formatDuration((Date.now() - Date.parse(p.joined_at)) / 1000) },
        { key: 'publishing', label: 'Sending media', render: (p) => (p.publishing ? 'Yes' : 'No') },
        { key: 'muted', label: 'Audio', render: (p) => (p.muted ? el('span', { class: 'badge muted-flag' }, 'Muted') : 'On') },
        { key: 'actions', label: 'Actions', render: participantActions },
      ],
    });
    participants.id = 'participants-table';

    async function setMuted(p, muted, button) {
      participantError.clear();
      participantStatus.clear();
      await busy(button, async () => {
        try {
          await api.post(`/conferences/${id}/participants/${p.id}/mute`, { muted });
          p.muted = muted;
          participants.update(conference.participants);
          participantStatus.show(`${p.display_name} is ${muted ? 'muted' : 'unmuted'}.`);
        } catch (error) {
          participantError.show(`Could not ${muted ? 'mute' : 'unmute'} ${p.display_name}: ${error.message}`);
        }
      });
    }

    async function dropParticipant(p, button) {
      participantError.clear();
      participantStatus.clear();
      await busy(button, async () => {
        try {
          await api.post(`/conferences/${id}/participants/${p.id}/drop`);
          conference.participants = conference.participants.filter((x) => x.id !== p.id);
          renderParticipants();
          participantStatus.show(`${p.display_name} was dropped from the conference.`);
        } catch (error) {
          participantError.show(`Could not drop ${p.display_name}: ${error.message}`);
        }
      });
    }

    function renderParticipants() {
      const list = conference?.participants ?? [];
      participantsHeading.textContent = `Participants (${list.length})`;
      participants.update(list);
    }

    // ---- loading and live updates -----------------------------------------------------------

    function show(c) {
      conference = c;
      ctx.setTitle(c.name);
      renderDetails(c);
      renderActions(c);
      renderParticipants();
    }

    let loadSeq = 0;
    async function reload() {
      const seq = ++loadSeq;
      try {
        const c = await api.get(`/conferences/${encodeURIComponent(id)}`);
        if (disposed || seq !== loadSeq) return;
        loadError.clear();
        show(c);
      } catch (error) {
        if (disposed || seq !== loadSeq) return;
        loadError.show(error.status === 404
          ? `There is no conference ${id}. It may have been removed; choose one from the conference list.`
          : `Could not load the conference: ${error.message}`);
      }
    }

    const refresh = debounce(reload, 150);
    ctx.events.on('participant', (event) => {
      if (String(event.conference_id) !== String(id)) return;
      if (event.action === 'joined') ctx.announce?.(`${event.display_name} joined.`);
      if (event.action === 'left') ctx.announce?.(`${event.display_name} left.`);
      refresh();
    });
    ctx.events.on('conference', (event) => {
      if (String(event.id) === String(id)) refresh();
    });
    ctx.events.on('open', refresh);
    // "In the room for" moves on even when nothing happens.
    const ticker = setInterval(() => { if (conference) renderParticipants(); }, 30_000);

    main.append(loading);
    await reload();
    loading.remove();
    if (!conference) {
      main.append(loadError, el('p', {}, el('a', { href: '/conferences' }, 'Back to the conference list')));
      return () => { disposed = true; clearInterval(ticker); refresh.cancel(); };
    }

    main.append(
      el('p', {}, el('a', { href: '/conferences' }, 'Back to the conference list')),
      loadError,
      endedNote,
      el('div', { class: 'two-col' },
        el('section', { class: 'panel', 'aria-labelledby': detailsHeadingId },
          el('h2', { id: detailsHeadingId }, 'Details'), details),
        isAdmin ? actionsPanel : null),
      el('section', { class: 'panel', 'aria-labelledby': participantsHeadingId },
        participantsHeading, participantError, participantStatus, participants));

    return () => {
      disposed = true;
      clearInterval(ticker);
      refresh.cancel();
    };
  },
};
