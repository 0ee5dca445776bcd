// The dashboard: what is happening now (live conferences, participants, bridges up and down), a
// chart of conferences and participants over the last 24 hours, and the panes the licence and
// redundancy modules will fill. Kept current by the event stream.

import { debounce, el, formatTime, table, uniqueId } from '../lib/ui.js';
import { browserTimeZone } from '../lib/time.js';

const SVG = 'http://www.w3.org/2000/svg';
const HOUR = 3_600_000;
const MAX_PAGES = 10;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/** Every item of a paged CDR list from `from` on (at most MAX_PAGES pages of 1000). */
async function allPages(api, path, arrayName, params) {
  let cursor;
  let out = [];
  for (let i = 0; i < MAX_PAGES; i++) {
    const answer = await api.get(path, { ...params, limit: 1000, cursor });
    out = out.concat(answer[arrayName] ?? []);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return out;
}

/** Counts, per hourly bucket, the intervals [start, end) that overlap it. */
function countPerBucket(buckets, intervals) {
  return buckets.map((b) => intervals.filter(([s, e]) => s < b + HOUR && e > b).length);
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
      isAdmin ? activeStat.node : null,
      isAdmin ? participantsStat.node : null,
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

    // DOM append would print a null as the text "null": leave out what this role cannot see.
    main.append(...[
      error,
      cards,
      isAdmin ? chartPanel : null,
      seesBridges ? bridgesPanel : null,
      el('div', { class: 'two-col' },
        pane('Licence', 'Licensing arrives in a later release. This pane will show the licensed ports, how many are in use and when the licence expires.'),
        pane('Redundancy', 'The active/standby pair arrives in a later release. This pane will show which node is active and whether the standby is in sync.')),
    ].filter(Boolean));

    async function loadNow() {
      const jobs = [];
      if (isAdmin) {
        jobs.push(api.get('/conferences', { state: 'live', limit: 1000 }).then((answer) => {
          const live = answer.conferences ?? [];
          activeStat.value.textContent = String(live.length);
          activeStat.sub.textContent = live.length ? `${live.filter((c) => c.state === 'starting').length} starting` : 'none running';
          const people = live.reduce((n, c) => n + (c.participant_count ?? 0), 0);
          participantsStat.value.textContent = String(people);
          participantsStat.sub.textContent = `in ${live.length} conference${live.length === 1 ? '' : 's'}`;
          return live;
        }));
      }
      if (seesBridges) {
        jobs.push(api.get('/bridges').then((answer) => {
          const all = answer.bridges ?? [];
          const up = all.filter((b) => b.health === 'up').length;
          const down = all.filter((b) => b.health === 'down').length;
          bridgesStat.value.textContent = `${up} of ${all.length}`;
          bridgesStat.sub.textContent = `${down} down${all.length - up - down ? `, ${all.length - up - down} not yet checked` : ''}`;
          bridgeTable.update(all);
        }));
      }
      await Promise.all(jobs);
    }

    async function loadChart() {
      const now = Date.now();
      const first = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
      const buckets = Array.from({ length: 24 }, (_, i) => first + i * HOUR);
      const fromIso = new Date(first).toISOString();
      const [cdrs, legs, liveAnswer] = await Promise.all([
        allPages(api, '/cdrs/conferences', 'cdrs', { from: fromIso }),
        allPages(api, '/cdrs/participants', 'legs', { from: fromIso }),
        api.get('/conferences', { state: 'live', limit: 1000 }),
      ]);
      const live = liveAnswer.conferences ?? [];
      const confIntervals = cdrs.filter((r) => r.actual_start && r.actual_end)
        .map((r) => [Date.parse(r.actual_start), Date.parse(r.actual_end)]);
      for (const c of live) confIntervals.push([Date.parse(c.actual_start ?? c.start), now + 1]);
      const legIntervals = legs.map((r) => [Date.parse(r.joined_at), Date.parse(r.left_at)]);
      // Who is in a room now: the monitor's list for a few conferences, else the count now.
      if (live.length <= 20) {
        const details = await Promise.all(live.map((c) => api.get(`/conferences/${c.id}`).catch(() => null)));
        for (const d of details) {
          for (const p of d?.participants ?? []) legIntervals.push([Date.parse(p.joined_at), now + 1]);
        }
      } else {
        for (const c of live) for (let i = 0; i < (c.participant_count ?? 0); i++) legIntervals.push([now, now + 1]);
      }
      const conferences = countPerBucket(buckets, confIntervals);
      const participants = countPerBucket(buckets, legIntervals);
      if (disposed) return;
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

    async function refresh({ withChart = false } = {}) {
      try {
        await Promise.all([loadNow(), withChart && isAdmin ? loadChart() : null]);
        if (!disposed) error.hidden = true;
      } catch (e) {
        if (disposed) return;
        error.textContent = `Some figures could not be loaded: ${e.message}`;
        error.hidden = false;
      }
    }

    const soon = debounce(() => refresh(), 500);
    const chartSoon = debounce(() => refresh({ withChart: true }), 5000);
    ctx.events.on('conference', () => { soon(); chartSoon(); });
    ctx.events.on('participant', soon);
    ctx.events.on('bridge', soon);
    ctx.events.on('open', soon);
    const timer = setInterval(() => refresh({ withChart: true }), 60_000);

    await refresh({ withChart: true });

    return () => {
      disposed = true;
      soon.cancel();
      chartSoon.cancel();
      clearInterval(timer);
    };
  },
};
