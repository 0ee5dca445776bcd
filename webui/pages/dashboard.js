// The dashboard: what is happening now (live conferences, participants, bridges up and down), a
// chart of conferences and participants over the last 24 hours, the licence (state, days left,
// ports in use against licensed), a Backups pane when a backup failed (for admin and support),
// and the pane the redundancy module will fill. Kept current by the event stream.

import { debounce, el, formatDateTime, formatTime, table, uniqueId } from '../lib/ui.js';
import { sentence } from '../lib/admin.js';
import { browserTimeZone } from '../lib/time.js';

const SVG = 'http://www.w3.org/2000/svg';
const HOUR = 3_600_000;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}



/** A bar (conferences) and line (participants) chart as an inline SVG built with DOM calls. */
function chart(buckets, conferences, participants, zone) {
  const W = 720;
  const H = 200;
  const left = 40;
  const right = 12;
  const top = 12;
  const bottom = 30;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const peak = Math.max(1, ...conferences, ...participants);
  const step = peak <= 5 ? 1 : 10 ** Math.floor(Math.log10(peak)) * (peak / 10 ** Math.floor(Math.log10(peak)) > 5 ? 2 : 1);
  const max = Math.ceil(peak / step) * step;
  const y = (v) => top + plotH - (v / max) * plotH;
  const slot = plotW / buckets.length;

  const titleId = uniqueId('chart-title');
  const descId = uniqueId('chart-desc');
  const peakC = Math.max(...conferences);
  const peakP = Math.max(...participants);
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': `${titleId} ${descId}`,
    preserveAspectRatio: 'xMidYMid meet',
  },
  svg('title', { id: titleId }, 'Conferences and participants per hour, last 24 hours'),
  svg('desc', { id: descId },
    `At most ${peakC} conference${peakC === 1 ? '' : 's'} and ${peakP} participant${peakP === 1 ? '' : 's'} in any hour.`));

  const ticks = [];
  for (let v = 0; v <= max; v += step) ticks.push(v);
  for (const v of ticks) {
    root.append(svg('line', { x1: left, x2: W - right, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'grid' }));
    root.append(svg('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  buckets.forEach((b, i) => {
    const h = (conferences[i] / max) * plotH;
    if (h > 0) {
      root.append(svg('rect', {
        x: left + i * slot + slot * 0.2, y: top + plotH - h, width: slot * 0.6, height: h, class: 'bar-conf',
      }));
    }
    if (i % 3 === 0) {
      root.append(svg('text', { x: left + i * slot + slot / 2, y: H - 10, 'text-anchor': 'middle' },
        formatTime(new Date(b).toISOString(), zone)));
    }
  });
  const points = participants.map((v, i) => `${(left + i * slot + slot / 2).toFixed(1)},${y(v).toFixed(1)}`);
  root.append(svg('polyline', { points: points.join(' '), class: 'line-part' }));
  participants.forEach((v, i) => {
    root.append(svg('circle', { cx: left + i * slot + slot / 2, cy: y(v), r: 3, class: 'dot-part' }));
  });
  return root;
}

export default {
  path: '/',
  title: 'Dashboard',
  roles: ['admin', 'operator', 'support', 'noc'],
  nav: true,

  async mount(main, ctx) {
    const { api } = ctx;
    const zone = browserTimeZone();
    const isAdmin = ctx.hasRole('admin');
    const seesBridges = isAdmin || ctx.hasRole('noc');
    const seesBackups = isAdmin || ctx.hasRole('support');
    let disposed = false;

    const stat = (title, sub = '') => {
      const headingId = uniqueId('stat');
      const value = el('p', { class: 'value' }, '…');
      const subNode = el('p', { class: 'sub' }, sub);
      const node = el('section', { class: 'stat', 'aria-labelledby': headingId },
        el('h2', { id: headingId }, title), value, subNode);
      return { node, value, sub: subNode };
    };
    const activeStat = stat('Active conferences');
    const participantsStat = stat('Participants now');
    const bridgesStat = stat('Bridges up');
    const error = el('p', { class: 'message error', role: 'alert', hidden: true });

    const cards = el('div', { class: 'cards' },
      seesBridges ? activeStat.node : null,
      seesBridges ? participantsStat.node : null,
      seesBridges ? bridgesStat.node : null);

    // Last 24 hours
    const chartHeadingId = uniqueId('chart');
    const chartBox = el('div', { 'aria-busy': 'true' }, el('p', { class: 'working' }, 'Working…'));
    const chartTable = el('div');
    const chartPanel = el('section', { class: 'panel', 'aria-labelledby': chartHeadingId },
      el('h2', { id: chartHeadingId }, 'Last 24 hours'),
      chartBox,
      el('ul', { class: 'legend' },
        el('li', {}, el('span', { class: 'swatch conf' }), 'Conferences running in the hour (bars)'),
        el('li', {}, el('span', { class: 'swatch part' }), 'Participants in the hour (line)')),
      el('details', {}, el('summary', {}, 'Show the figures as a table'), chartTable));

    // Bridges
    const bridgesHeadingId = uniqueId('bridges');
    const bridgeTable = table({
      caption: 'Bridges and their health',
      empty: 'No bridge is registered yet.',
      columns: [
        { key: 'name', label: 'Bridge' },
        { key: 'health', label: 'Health', render: (b) => el('span', { class: `badge ${b.health}` }, b.health) },
        { key: 'latency_ms', label: 'Latency', class: 'num', render: (b) => (b.latency_ms === null || b.latency_ms === undefined ? '—' : `${b.latency_ms} ms`) },
        { key: 'state', label: 'State' },
        { key: 'capacity_ports', label: 'Ports', class: 'num' },
        { key: 'health_message', label: 'Problem', render: (b) => (b.health === 'down' ? b.health_message ?? b.health_cause : '') },
      ],
    });
    const bridgesPanel = el('section', { class: 'panel', 'aria-labelledby': bridgesHeadingId },
      el('h2', { id: bridgesHeadingId }, 'Bridges'), bridgeTable,
      el('p', {}, el('a', { href: '/bridges' }, isAdmin ? 'Manage bridges' : 'Bridge details')));

    const pane = (title, text) => {
      const id = uniqueId('pane');
      return el('section', { class: 'panel', 'aria-labelledby': id },
        el('h2', { id }, title), el('p', { class: 'muted' }, text));
    };

    // Licence: state, days left, ports reserved now against licensed; a warning in grace.
    const licenceHeadingId = uniqueId('licence');
    const licenceState = el('p', {}, '…');
    const licencePorts = el('p', {}, '');
    const licenceWarning = el('p', { class: 'message notice', role: 'status', hidden: true });
    const licencePanel = el('section', { class: 'panel', 'aria-labelledby': licenceHeadingId },
      el('h2', { id: licenceHeadingId }, 'Licence'), licenceWarning, licenceState, licencePorts,
      el('p', {}, el('a', { href: '/licenses' }, isAdmin ? 'Manage the licence' : 'Licence details')));

    // Backups: shown only while the last backup (scheduled or by hand) has failed, until one
    // succeeds; support, who cannot read the summary, asks the backups list for the same fact.
    const backupsHeadingId = uniqueId('backups');
    const backupsText = el('p', { class: 'message error' }, '');
    const backupsPanel = el('section', { class: 'panel', 'aria-labelledby': backupsHeadingId, hidden: true },
      el('h2', { id: backupsHeadingId }, 'Backups'), backupsText,
      el('p', {}, el('a', { href: '/backups' }, 'Open Backup/Restore')));

    function showBackups(backups) {
      // The schedule's last run when it failed (or its copy did), else a failed backup by hand.
      const scheduled = ['failed', 'copy_failed'].includes(backups?.last_scheduled?.state) ? backups.last_scheduled : null;
      const failure = scheduled ?? backups?.last_failure;
      backupsPanel.hidden = !failure;
      if (!failure) return;
      const at = failure.started_at ?? failure.at;
      const what = scheduled ? 'The scheduled backup' : 'The backup';
      const of = at ? ` of ${formatDateTime(at, zone, { zoneName: true })}` : '';
      backupsText.textContent = `${what}${of} failed: ${sentence(failure.error) || 'no reason was given.'}`;
    }

    // DOM append would print a null as the text "null": leave out what this role cannot see.
    main.append(...[
      error,
      seesBackups ? backupsPanel : null,
      cards,
      seesBridges ? chartPanel : null,
      seesBridges ? bridgesPanel : null,
      el('div', { class: 'two-col' },
        seesBridges ? licencePanel : null,
        pane('Redundancy', 'The active/standby pair arrives in a later release. This pane will show which node is active and whether the standby is in sync.')),
    ].filter(Boolean));

    // One summary (GET /dashboard, admin and noc) feeds the figures and the chart.
    async function load() {
      if (!seesBridges) {
        if (seesBackups) {
          const answer = await api.get('/backups');
          if (!disposed) showBackups(answer);
        }
        return;
      }
      const [summary, bridgeAnswer] = await Promise.all([api.get('/dashboard'), api.get('/bridges')]);
      if (disposed) return;
      if (seesBackups) showBackups(summary.backups);
      const live = summary.live_conferences;
      activeStat.value.textContent = String(live);
      activeStat.sub.textContent = live ? `${summary.starting_conferences} starting` : 'none running';
      participantsStat.value.textContent = String(summary.participants_now);
      participantsStat.sub.textContent = `in ${live} conference${live === 1 ? '' : 's'}`;
      const { up, down, total } = summary.bridges;
      bridgesStat.value.textContent = `${up} of ${total}`;
      bridgesStat.sub.textContent = `${down} down${total - up - down ? `, ${total - up - down} not yet checked` : ''}`;
      bridgeTable.update(bridgeAnswer.bridges ?? []);
      const licence = summary.licence;
      if (licence) {
        const names = { evaluation: 'Evaluation mode', not_yet_valid: 'Not yet valid', valid: 'Licensed', grace: 'Grace period', expired: 'Expired' };
        const left = licence.days_left === null ? '' : `, ${licence.days_left} day${licence.days_left === 1 ? '' : 's'} left`;
        licenceState.replaceChildren(el('span', { class: `badge ${licence.state}` }, names[licence.state] ?? licence.state), left);
        licencePorts.textContent = `Ports in use: ${licence.ports_reserved_now} of ${licence.limits.concurrent_ports} licensed`;
        const warn = licence.state === 'grace' || licence.state === 'expired' || licence.state === 'evaluation';
        licenceWarning.textContent = warn ? `${licence.message[0].toUpperCase()}${licence.message.slice(1)}.` : '';
        licenceWarning.hidden = !warn;
      }

      const buckets = summary.hours.map((h) => Date.parse(h.start));
      const conferences = summary.hours.map((h) => h.conferences);
      const participants = summary.hours.map((h) => h.participants);
      chartBox.replaceChildren(chart(buckets, conferences, participants, zone));
      chartBox.removeAttribute('aria-busy');
      chartTable.replaceChildren(table({
        caption: 'Conferences and participants per hour',
        columns: [
          { key: 'hour', label: 'Hour starting' },
          { key: 'conferences', label: 'Conferences', class: 'num' },
          { key: 'participants', label: 'Participants', class: 'num' },
        ],
        rows: buckets.map((b, i) => ({
          hour: formatTime(new Date(b).toISOString(), zone), conferences: conferences[i], participants: participants[i],
        })),
      }));
    }

    async function refresh() {
      try {
        await load();
        if (!disposed) error.hidden = true;
      } catch (e) {
        if (disposed) return;
        error.textContent = `Some figures could not be loaded: ${e.message}`;
        error.hidden = false;
      }
    }

    const soon = debounce(() => refresh(), 500);
    ctx.events.on('conference', soon);
    ctx.events.on('participant', soon);
    ctx.events.on('bridge', soon);
    ctx.events.on('backup', (e) => {
      if (e?.state !== 'running') soon();
    });
    ctx.events.on('open', soon);
    // The NOC gets no conference events (they carry PINs): the minute timer keeps it current.
    const timer = setInterval(() => refresh(), 60_000);

    await refresh();

    return () => {
      disposed = true;
      soon.cancel();
      clearInterval(timer);
    };
  },
};
