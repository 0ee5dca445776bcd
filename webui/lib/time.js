// Time helpers for the console: wall-clock times in an IANA time zone <-> instants, with the
// browser's Intl data only (no library).

/** The viewer's IANA time zone, e.g. "Europe/Berlin" (UTC when the browser does not say). */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Every IANA time zone the browser knows, sorted, with UTC and `include` guaranteed present. */
export function timeZones(include = []) {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch {
    zones = [];
  }
  const set = new Set(zones);
  for (const z of ['UTC', ...include]) if (z) set.add(z);
  return [...set].sort((a, b) => a.localeCompare(b));
}

const partsFormatters = new Map();
function partsFormatter(timeZone) {
  let f = partsFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
      weekday: 'short',
    });
    partsFormatters.set(timeZone, f);
  }
  return f;
}

/** {year, month, day, hour, minute, second, weekday: 0=Mon..6=Sun} of `ms` as seen in `timeZone`. */
export function zonedParts(ms, timeZone) {
  const out = {};
  for (const p of partsFormatter(timeZone).formatToParts(new Date(ms))) {
    if (p.type === 'weekday') {
      out.weekday = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(p.value);
    } else if (p.type !== 'literal') {
      out[p.type] = Number.parseInt(p.value, 10);
    }
  }
  if (out.hour === 24) out.hour = 0;
  return out;
}

/** How far `timeZone` is ahead of UTC at instant `ms`, in milliseconds. */
function offsetAt(ms, timeZone) {
  const p = zonedParts(ms, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/**
 * The instant (ms since the epoch) of wall-clock `date` ("YYYY-MM-DD") and `time` ("HH:MM" or
 * "HH:MM:SS") in `timeZone`. A time skipped by a daylight-saving change resolves forwards.
 */
export function zonedToEpoch(date, time, timeZone) {
  const [y, mo, d] = date.split('-').map(Number);
  const [h, mi, s = 0] = time.split(':').map(Number);
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  let guess = wall - offsetAt(wall, timeZone);
  const second = wall - offsetAt(guess, timeZone);
  if (second !== guess) guess = second;
  return guess;
}

/** RFC 3339 UTC ("2026-11-22T08:00:00Z") of wall-clock `date` and `time` in `timeZone`. */
export function zonedToIso(date, time, timeZone) {
  return epochToIso(zonedToEpoch(date, time, timeZone));
}

/** RFC 3339 UTC without fractions. */
export function epochToIso(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** {date: "YYYY-MM-DD", time: "HH:MM"} of an instant as seen in `timeZone`. */
export function isoToZoned(iso, timeZone) {
  const p = zonedParts(Date.parse(iso), timeZone);
  return { date: `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`, time: `${pad(p.hour)}:${pad(p.minute)}` };
}

/** "YYYY-MM-DD" of today (or of `ms`) in `timeZone`. */
export function localDate(timeZone, ms = Date.now()) {
  return isoToZoned(new Date(ms).toISOString(), timeZone).date;
}

/** Adds `days` to a "YYYY-MM-DD" date. */
export function addDays(date, days) {
  const [y, m, d] = date.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** 0 = Monday … 6 = Sunday of a "YYYY-MM-DD" date. */
export function weekdayOf(date) {
  const [y, m, d] = date.split('-').map(Number);
  return (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
}
