// Test support for the browser tests: a real Janus (Debian's `janus`, VideoRoom plugin and HTTP
// transport only, on 127.0.0.1 and free ports) whose event handler posts to a vcrmd, a bridge
// registered for it through the API, and participants that join through Janus's own HTTP API
// (publishers without media), as tests/support/janus_process.cc does for the C++ tests.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request as playwrightRequest } from 'playwright-core';

const JANUS = '/usr/bin/janus';
const READY_TIMEOUT_MS = 20_000;

function janusLibDir() {
  for (const d of ['/usr/lib/x86_64-linux-gnu/janus', '/usr/lib/aarch64-linux-gnu/janus', '/usr/lib/janus',
    '/usr/local/lib/janus', '/opt/janus/lib/janus']) {
    if (existsSync(path.join(d, 'plugins', 'libjanus_videoroom.so'))) return d;
  }
  throw new Error("Janus's VideoRoom plugin was not found (install the janus package)");
}

/** The module files of `folder` except `keep`, comma-separated, for a `disable` directive. */
async function allBut(folder, keep = '') {
  const names = (await readdir(folder).catch(() => [])).filter((n) => n.endsWith('.so') && n !== keep).sort();
  return names.join(',');
}

/** A libconfig string literal. */
const quoted = (s) => `"${String(s).replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const transaction = () => randomBytes(8).toString('hex');

async function postJson(url, body, timeoutMs = 10_000) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/**
 * Starts Janus with its configuration in a fresh temporary folder.
 * Options: {adminSecret, events: {url, user, password}, ip (default 127.0.0.1), netns (a network
 * namespace to run it in, through `ip netns exec`)}. Returns {httpUrl, adminUrl, dir, stop(),
 * videoRoom(request)}.
 */
export async function startJanus({ adminSecret, events = null, httpPort, adminPort, ip = '127.0.0.1', netns = null } = {}) {
  if (!existsSync(JANUS)) throw new Error(`${JANUS} not found (install the janus package)`);
  const lib = janusLibDir();
  const dir = await mkdtemp('/tmp/vcrm-browser-janus-');
  httpPort ??= await freePort();
  if (adminPort === undefined) {
    do adminPort = await freePort(); while (adminPort === httpPort);
  }
  const rtpBase = 20000 + (httpPort % 20000);
  const secret = adminSecret ?? randomBytes(12).toString('hex');

  await writeFile(path.join(dir, 'janus.jcfg'), [
    'general: {',
    `  configs_folder = ${quoted(dir)}`,
    `  plugins_folder = ${quoted(path.join(lib, 'plugins'))}`,
    `  transports_folder = ${quoted(path.join(lib, 'transports'))}`,
    `  events_folder = ${quoted(path.join(lib, 'events'))}`,
    `  loggers_folder = ${quoted(path.join(lib, 'loggers'))}`,
    '  log_to_stdout = true',
    `  log_to_file = ${quoted(path.join(dir, 'janus.log'))}`,
    '  debug_level = 4',
    '  debug_timestamps = true',
    '  debug_colors = false',
    `  admin_secret = ${quoted(secret)}`,
    '  server_name = "vcrm-browser-test-janus"',
    '  session_timeout = 60',
    `  interface = ${quoted(ip)}`,
    '}',
    'certificates: {\n}',
    `media: {\n  rtp_port_range = "${rtpBase}-${rtpBase + 99}"\n}`,
    'nat: {\n  nice_debug = false\n}',
    `plugins: {\n  disable = ${quoted(await allBut(path.join(lib, 'plugins'), 'libjanus_videoroom.so'))}\n}`,
    `transports: {\n  disable = ${quoted(await allBut(path.join(lib, 'transports'), 'libjanus_http.so'))}\n}`,
    `loggers: {\n  disable = ${quoted(await allBut(path.join(lib, 'loggers')))}\n}`,
    `events: {\n  broadcast = ${events ? 'true' : 'false'}\n  disable = ${quoted(await allBut(path.join(lib, 'events'), 'libjanus_sampleevh.so'))}\n}`,
    '',
  ].join('\n'));
  await writeFile(path.join(dir, 'janus.transport.http.jcfg'), [
    'general: {', '  json = "compact"', '  base_path = "/janus"', '  http = true', `  port = ${httpPort}`,
    `  ip = ${quoted(ip)}`, '  https = false', '}',
    'admin: {', '  admin_base_path = "/admin"', '  admin_http = true', `  admin_port = ${adminPort}`,
    `  admin_ip = ${quoted(ip)}`, '  admin_https = false', '}',
    'cors: {\n}', 'certificates: {\n}', '',
  ].join('\n'));
  // No static rooms: every room a test sees was created by vcrmd.
  await writeFile(path.join(dir, 'janus.plugin.videoroom.jcfg'), 'general: {\n}\n');
  const evh = ['general: {', `  enabled = ${events ? 'true' : 'false'}`];
  if (events) {
    evh.push('  events = "plugins,handles,sessions"', '  grouping = true', '  json = "compact"',
      `  backend = ${quoted(events.url)}`);
    if (events.user) evh.push(`  backend_user = ${quoted(events.user)}`, `  backend_pwd = ${quoted(events.password)}`);
    // vcrmd goes away before Janus does at the end of a test; do not hold Janus's shutdown.
    evh.push('  max_retransmissions = 2', '  retransmissions_backoff = 50');
  }
  evh.push('}', '');
  await writeFile(path.join(dir, 'janus.eventhandler.sampleevh.jcfg'), evh.join('\n'));

  const outPath = path.join(dir, 'janus.out');
  const fd = openSync(outPath, 'a');
  let child;
  try {
    const argv = [JANUS, '-C', path.join(dir, 'janus.jcfg'), '-F', dir];
    // `ip netns exec` enters the namespace and execs Janus in the same process.
    if (netns) argv.unshift('/usr/sbin/ip', 'netns', 'exec', netns);
    child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  // Janus must not outlive the test process.
  const killOnExit = () => { if (!exited()) child.kill('SIGKILL'); };
  process.once('exit', killOnExit);

  const httpUrl = `http://${ip}:${httpPort}/janus`;
  const adminUrl = `http://${ip}:${adminPort}/admin`;

  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    process.off('exit', killOnExit);
    if (!exited()) {
      child.kill('SIGTERM');
      const gone = await Promise.race([
        new Promise((resolve) => child.once('exit', () => resolve(true))),
        sleep(10_000, false),
      ]);
      if (!gone && !exited()) {
        child.kill('SIGKILL');
        await Promise.race([new Promise((resolve) => child.once('exit', resolve)), sleep(5_000)]);
      }
    }
    if (process.env.VCRM_KEEP_TEST_ROOT) {
      console.error(`keeping ${dir} (VCRM_KEEP_TEST_ROOT is set)`);
      return;
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited()) {
      const out = await readFile(outPath, 'utf8').catch(() => '');
      await stop();
      throw new Error(`Janus exited during start-up:\n${out.slice(-4000)}`);
    }
    try {
      const pong = await postJson(adminUrl, { janus: 'ping', transaction: transaction() }, 500);
      const info = await (await fetch(`${httpUrl}/info`, { signal: AbortSignal.timeout(500) })).json();
      if (pong.janus === 'pong' && info.janus === 'server_info') break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      const out = await readFile(outPath, 'utf8').catch(() => '');
      await stop();
      throw new Error(`Janus did not answer within ${READY_TIMEOUT_MS / 1000} s:\n${out.slice(-4000)}`);
    }
    await sleep(50);
  }

  return {
    httpUrl,
    adminUrl,
    adminSecret: secret,
    dir,
    pid: child.pid,
    stop,
    /** One VideoRoom request through the Admin API's message_plugin; returns its response. */
    async videoRoom(requestBody) {
      const answer = await postJson(adminUrl, {
        janus: 'message_plugin', transaction: transaction(), admin_secret: secret,
        plugin: 'janus.plugin.videoroom', request: requestBody,
      });
      if (!answer.response) throw new Error(`message_plugin failed: ${JSON.stringify(answer)}`);
      return answer.response;
    },
  };
}

/**
 * A participant in a VideoRoom, joined through Janus's own HTTP API as a publisher without media:
 * create a session, attach janus.plugin.videoroom, send `join` (ptype publisher, display, pin) and
 * long-poll for its answer; a keepalive every 15 s; leave() sends `leave`, detaches and destroys.
 */
export class JanusParticipant {
  constructor(httpUrl) {
    this.url = httpUrl;
    this.session = null;
    this.handle = null;
    this.id = null;
    this.keepalive = null;
    this.left = false;
    this.events = [];
    this.polling = null;
    this.stopPolling = new AbortController();
  }

  static async join(httpUrl, { room, display, pin }) {
    const p = new JanusParticipant(httpUrl);
    await p.#join(room, display, pin);
    return p;
  }

  async #send(janus, extra = {}, toHandle = false) {
    let url = this.url;
    if (janus !== 'create') url += `/${this.session}`;
    if (toHandle) url += `/${this.handle}`;
    const answer = await postJson(url, { ...extra, janus, transaction: transaction() });
    if (answer.janus === 'error') throw new Error(`${janus} refused: ${answer.error?.reason ?? JSON.stringify(answer)}`);
    return answer;
  }

  /**
   * The first event of this session for which `predicate(event)` holds, or null after
   * `timeoutMs`. One long poll at a time feeds a buffer that every waiter reads, so waits may
   * overlap, and a wait that times out never abandons a poll (Janus would hand the next event
   * to the dead request). Events nobody has taken yet stay buffered (the newest 200).
   */
  async waitForEvent(predicate, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.events.findIndex(predicate);
      if (index >= 0) return this.events.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0 || this.left) return null;
      this.polling ??= this.#poll().finally(() => { this.polling = null; });
      await Promise.race([this.polling, sleep(left)]);
    }
  }

  async #poll() {
    try {
      const response = await fetch(`${this.url}/${this.session}?maxev=1`, { signal: this.stopPolling.signal });
      const event = await response.json();
      if (event.janus !== 'keepalive') this.events.push(event);
      if (this.events.length > 200) this.events.shift();
    } catch {
      await sleep(100); // Janus gone or the session ended: waiters time out
    }
  }

  async #join(room, display, pin) {
    this.session = (await this.#send('create')).data.id;
    try {
      this.handle = (await this.#send('attach', { plugin: 'janus.plugin.videoroom' })).data.id;
      this.keepalive = setInterval(() => { this.#send('keepalive').catch(() => {}); }, 15_000);
      this.keepalive.unref();
      const body = { request: 'join', ptype: 'publisher', room, display };
      if (pin) body.pin = pin;
      const ack = await this.#send('message', { body }, true);
      const event = await this.waitForEvent((e) => e.transaction === ack.transaction && e.janus === 'event');
      const data = event?.plugindata?.data;
      if (!data) throw new Error('no answer to join within 10 s');
      if (data.error_code) throw new Error(`join refused: ${data.error} (${data.error_code})`);
      if (data.videoroom !== 'joined') throw new Error(`unexpected answer to join: ${JSON.stringify(data)}`);
      this.id = data.id;
    } catch (error) {
      clearInterval(this.keepalive);
      this.stopPolling.abort();
      await this.#send('destroy').catch(() => {});
      throw error;
    }
  }

  /**
   * Sends `configure` with an SDP offer (a publisher's media) and returns Janus's SDP answer.
   * Only positive waits: a long poll abandoned on a timeout would swallow the next event.
   */
  async publish(offerSdp) {
    const ack = await this.#send('message', {
      body: { request: 'configure', audio: true, video: true },
      jsep: { type: 'offer', sdp: offerSdp },
    }, true);
    const event = await this.waitForEvent((e) => e.transaction === ack.transaction && e.janus === 'event');
    const data = event?.plugindata?.data;
    if (!data) throw new Error('no answer to configure within 10 s');
    if (data.configured !== 'ok' || event.jsep?.type !== 'answer') {
      throw new Error(`configure refused: ${JSON.stringify(event)}`);
    }
    return event.jsep.sdp;
  }

  /** Leaves the room and ends the Janus session; never throws (Janus may be gone). */
  async leave() {
    if (this.left) return;
    this.left = true;
    clearInterval(this.keepalive);
    this.stopPolling.abort();
    await this.#send('message', { body: { request: 'leave' } }, true).catch(() => {});
    await this.#send('detach', {}, true).catch(() => {});
    await this.#send('destroy').catch(() => {});
  }
}

/**
 * An API client for the tests (playwright-core's APIRequestContext, trusting the appliance's
 * self-signed certificate), signed in with a bearer token: {get, post, patch, del, dispose}.
 * Each method returns {status, body (parsed JSON or text), headers}.
 */
export async function apiClient(appliance, username = 'admin', password = appliance.password) {
  const context = await playwrightRequest.newContext({ baseURL: appliance.url, ignoreHTTPSErrors: true });
  const login = await context.post('/api/v1/auth/login', { data: { username, password } });
  if (login.status() !== 200) {
    const text = await login.text();
    await context.dispose();
    throw new Error(`signing in as ${username} failed: ${login.status()} ${text}`);
  }
  const { token } = await login.json();
  const headers = { Authorization: `Bearer ${token}` };
  async function call(method, url, data) {
    const response = await context.fetch(`/api/v1${url}`, { method, headers, data });
    const text = await response.text();
    let body = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON (CSV, text)
    }
    return { status: response.status(), body, headers: response.headers() };
  }
  return {
    get: (url) => call('GET', url),
    post: (url, data) => call('POST', url, data ?? {}),
    patch: (url, data) => call('PATCH', url, data),
    del: (url) => call('DELETE', url),
    dispose: () => context.dispose(),
  };
}

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws `what`). */
export async function eventually(fn, what, timeoutMs = 10_000, stepMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(stepMs);
  }
}

/**
 * Registers a bridge through the API, then starts a Janus whose event handler posts to vcrmd as
 * `GET /api/v1/bridges/{id}/janus-config` says, and waits until vcrmd sees it up.
 * `ip` and `netns` place the Janus on another host (see startJanus). Returns {bridge, janus}.
 */
export async function startBridge(api, { name = 'test-janus', capacity = 20, ip = '127.0.0.1', netns = null } = {}) {
  const httpPort = await freePort();
  let adminPort;
  do adminPort = await freePort(); while (adminPort === httpPort);
  const adminSecret = randomBytes(12).toString('hex');
  const created = await api.post('/bridges', {
    name,
    url: `http://${ip}:${httpPort}/janus`,
    admin_url: `http://${ip}:${adminPort}/admin`,
    admin_secret: adminSecret,
    capacity_ports: capacity,
  });
  if (created.status !== 201) throw new Error(`registering the bridge failed: ${created.status} ${JSON.stringify(created.body)}`);
  const bridge = created.body;
  const config = await api.get(`/bridges/${bridge.id}/janus-config`);
  if (config.status !== 200) throw new Error(`janus-config: ${config.status} ${config.body}`);
  const pick = (key) => {
    const m = new RegExp(`^\\s*${key} = "([^"]*)"`, 'm').exec(config.body);
    if (!m) throw new Error(`no ${key} in the janus-config answer:\n${config.body}`);
    return m[1];
  };
  const janus = await startJanus({
    adminSecret,
    httpPort,
    adminPort,
    ip,
    netns,
    events: { url: pick('backend'), user: pick('backend_user'), password: pick('backend_pwd') },
  });
  try {
    await eventually(async () => (await api.get(`/bridges/${bridge.id}`)).body?.health === 'up',
      `bridge ${name} to be up`, 15_000, 200);
  } catch (error) {
    await janus.stop();
    throw error;
  }
  return { bridge, janus };
}

/**
 * Ends a test file's world in the safe order, whatever state `before` left it in: participants
 * leave, Chromium closes, the API client goes, Janus stops, then vcrmd. Never throws.
 */
export async function stopEverything({ participants = [], browser, api, janus, appliance }) {
  for (const p of participants) await p.leave();
  await browser?.close().catch((error) => console.error(`closing Chromium: ${error.message}`));
  await api?.dispose().catch(() => {});
  await janus?.stop().catch((error) => console.error(`stopping Janus: ${error.message}`));
  await appliance?.stop().catch((error) => console.error(`stopping vcrmd: ${error.message}`));
}
