// Test support for the browser tests: a real vcrmd in a fresh temporary root, and Debian's
// Chromium driven by playwright-core (which never downloads a browser of its own).

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, request as playwrightRequest } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export const sourceDir = process.env.VCRM_SOURCE_DIR ?? path.resolve(here, '..', '..', '..');
export const binDir = process.env.VCRM_BIN_DIR ?? path.join(sourceDir, 'build', 'bin');
export const screenshotDir = path.resolve(here, '..', 'screenshots');
// The web UI has no build step: the tests serve the files from the source tree (or from
// VCRM_WEBUI_DIR), so a test always sees the web UI it was written against, whichever vcrmd
// binary runs it.
export const webuiDir = process.env.VCRM_WEBUI_DIR ?? path.join(sourceDir, 'webui');

const STARTUP_TIMEOUT_MS = 60_000;

/** The admin password startAppliance() chooses in place of the one-time one. */
export const ADMIN_PASSWORD = 'Admin-Chosen-By-The-Tests-2718';

/**
 * One API session as `username` (bearer token, so no CSRF token): {call(method, path, data),
 * dispose()}; call answers {status, body}. Throws when the sign-in fails.
 */
async function apiSession(url, username, password) {
  const context = await playwrightRequest.newContext({ baseURL: url, ignoreHTTPSErrors: true });
  const login = await context.post('api/v1/auth/login', { data: { username, password } });
  if (login.status() !== 200) {
    const text = await login.text();
    await context.dispose();
    throw new Error(`signing in as ${username} failed: ${login.status()} ${text}`);
  }
  const headers = { Authorization: `Bearer ${(await login.json()).token}` };
  return {
    async call(method, apiPath, data) {
      const response = await context.fetch(`api/v1${apiPath}`, { method, headers, data });
      const text = await response.text();
      return { status: response.status(), body: text ? JSON.parse(text) : null };
    },
    dispose: () => context.dispose(),
  };
}

/** One API request as admin (a session of its own); answers {status, body}. */
export async function adminCall(appliance, method, apiPath, data) {
  const admin = await apiSession(appliance.url, 'admin', appliance.password);
  try {
    return await admin.call(method, apiPath, data);
  } finally {
    await admin.dispose();
  }
}

/**
 * Creates a user as admin and makes the user's own first password change (to `password`), so
 * the account is ready as its owner would leave it; returns the creation's {status, body}.
 */
export async function createReadyUser(appliance, { username, password, roles }) {
  const admin = await apiSession(appliance.url, 'admin', appliance.password);
  try {
    const once = `one-time ${password}`;
    const created = await admin.call('POST', '/users', { username, password: once, roles });
    if (created.status !== 201) return created;
    const user = await apiSession(appliance.url, username, once);
    try {
      const changed = await user.call('POST', '/auth/password', { current_password: once, new_password: password });
      if (changed.status !== 204) throw new Error(`${username} could not choose a password: ${JSON.stringify(changed.body)}`);
    } finally {
      await user.dispose();
    }
    return created;
  } finally {
    await admin.dispose();
  }
}
const STOP_TIMEOUT_MS = 20_000;

// The flags Chromium needs on this machine: root, no GPU, and a closed network (without the
// background-networking flags it keeps trying to reach Google's hosts).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true when the child exits within `ms`, false otherwise. */
function waitForExit(child, ms) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    function onExit() {
      clearTimeout(timer);
      resolve(true);
    }
    child.once('exit', onExit);
  });
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

async function readLog(logPath) {
  try {
    return await readFile(logPath, 'utf8');
  } catch {
    return '(no log written)';
  }
}

/** Every postmaster.pid under `dir`: a PostgreSQL that is still running (a clean stop removes it). */
async function findPostmasterPids(dir) {
  const found = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      found.push(...await findPostmasterPids(full));
    } else if (entry.name === 'postmaster.pid') {
      const pid = Number.parseInt((await readFile(full, 'utf8').catch(() => '')).split('\n')[0], 10);
      if (Number.isInteger(pid) && pid > 0) found.push(pid);
    }
  }
  return found;
}

/**
 * If vcrmd died without stopping its embedded PostgreSQL, stop that server ourselves (immediate
 * shutdown) so no postmaster outlives the test and its deleted data directory.
 */
async function stopLeftoverPostgres(root) {
  for (const pid of await findPostmasterPids(root)) {
    if (!processAlive(pid)) continue;
    console.error(`vcrmd left PostgreSQL (pid ${pid}) running; stopping it`);
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      continue;
    }
    for (let i = 0; i < 50 && processAlive(pid); i++) await sleep(100);
    if (processAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts vcrmd in a fresh temporary root on ephemeral ports and waits until it is ready, then
 * does what an operator does first: signs in as admin with the one-time password and chooses
 * ADMIN_PASSWORD (unless `chooseAdminPassword` is false), and applies a licence made with the
 * repository's test key that lifts every limit (unless `applyTestLicence` is false), so tests
 * of other things are not bound by evaluation mode. `fixedHttpsPort: true` listens on a port
 * picked before the start instead of an ephemeral one, so the console's address stays the same
 * across a restart in place (a restore's). `installFrom: BUILD_DIR` runs an installed appliance
 * instead, as `packaging/dev run` does: the build's installation (`cmake --install`) goes into
 * slot a of the fresh root, and that slot's vcrm-supervisor starts `current`'s vcrmd, which
 * serves its slot's own web UI, on a fixed HTTPS port (the address stays across an upgrade).
 * Returns {url, password (the admin's now), initialPassword, root, version, readyInfo, logPath, stop()}.
 */
export async function startAppliance({
  extraArgs = [], chooseAdminPassword = true, applyTestLicence = true, fixedHttpsPort = false, installFrom = null,
} = {}) {
  const vcrmd = path.join(binDir, 'vcrmd');
  if (!existsSync(vcrmd)) {
    throw new Error(`${vcrmd} does not exist: build it first with 'packaging/dev build' ` +
      '(or set VCRM_BIN_DIR to the folder that holds vcrmd)');
  }

  const root = await mkdtemp(path.join('/tmp', 'vcrm-browser-'));
  // mkdtemp makes the folder 0700; when vcrmd runs as root its PostgreSQL runs as the
  // unprivileged 'vcrm' user, which must be able to reach its data directory below this.
  await chmod(root, 0o755);
  const logPath = path.join(root, 'vcrmd.log');
  const stateDir = path.join(root, 'var', 'lib', 'vcrm');
  const readyPath = path.join(stateDir, 'run', 'vcrmd.json');
  const passwordPath = path.join(stateDir, 'initial-admin-password');

  const httpsPort = fixedHttpsPort || installFrom ? await freePort() : 0;
  // Every listener on a port of its own (bridge events too: an appliance running beside the
  // tests, e.g. packaging/dev run, holds the default 8090); `extraArgs` may set them otherwise.
  const daemonArgs = ['--set', `https.port=${httpsPort}`, '--set', 'http.port=0', '--set', 'bridge_events.port=0',
    ...(installFrom ? [] : ['--set', `webui.dir=${webuiDir}`]), ...extraArgs];
  let command = vcrmd;
  let args = ['--root', root, ...daemonArgs];
  if (installFrom) {
    try {
      await installIntoSlot(installFrom, root);
    } catch (error) {
      await rm(root, { recursive: true, force: true });
      throw error;
    }
    command = path.join(root, 'opt', 'vcrm', 'current', 'bin', 'vcrm-supervisor');
    args = ['--root', root, '--', ...daemonArgs];
  }
  const log = await open(logPath, 'a');
  let child;
  try {
    child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd] });
  } finally {
    await log.close();
  }
  const spawnError = new Promise((resolve) => child.once('error', resolve));

  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    if (!exited(child) && child.pid !== undefined) {
      child.kill('SIGTERM');
      if (!await waitForExit(child, STOP_TIMEOUT_MS)) {
        console.error(`vcrmd (pid ${child.pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s ` +
          'of SIGTERM; killing it');
        child.kill('SIGKILL');
        await waitForExit(child, 5_000);
      }
    }
    await stopLeftoverPostgres(root);
    if (process.env.VCRM_KEEP_TEST_ROOT) {
      console.error(`keeping ${root} (VCRM_KEEP_TEST_ROOT is set)`);
      return;
    }
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  }

  async function fail(reason) {
    const text = await readLog(logPath);
    console.error(`vcrmd did not start: ${reason}\n--- ${logPath} ---\n${text}\n--- end of log ---`);
    await stop();
    throw new Error(`vcrmd did not start: ${reason} (its log is printed above)`);
  }

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let ready = null;
  while (!ready) {
    const error = await Promise.race([spawnError, sleep(100, null)]);
    if (error) return fail(`cannot run ${vcrmd}: ${error.message}`);
    if (exited(child)) {
      return fail(`it exited (${child.signalCode ?? `status ${child.exitCode}`}) before it was ready`);
    }
    try {
      ready = JSON.parse(await readFile(readyPath, 'utf8'));
    } catch {
      ready = null; // not there yet, or half-written
    }
    if (!ready && Date.now() > deadline) {
      return fail(`no ${readyPath} after ${STARTUP_TIMEOUT_MS / 1000} s`);
    }
  }
  if (!Number.isInteger(ready.https_port) || ready.https_port <= 0) {
    return fail(`${readyPath} has no usable https_port: ${JSON.stringify(ready)}`);
  }

  let password;
  try {
    password = (await readFile(passwordPath, 'utf8')).trim();
  } catch (error) {
    return fail(`cannot read the initial admin password from ${passwordPath}: ${error.message}`);
  }
  if (!password) return fail(`${passwordPath} is empty`);
  const url = `https://127.0.0.1:${ready.https_port}/`;
  const initialPassword = password;
  if (chooseAdminPassword) {
    try {
      const admin = await apiSession(url, 'admin', initialPassword);
      const changed = await admin.call('POST', '/auth/password', { current_password: initialPassword, new_password: ADMIN_PASSWORD });
      await admin.dispose();
      if (changed.status !== 204) throw new Error(`${changed.status} ${JSON.stringify(changed.body)}`);
    } catch (error) {
      return fail(`cannot choose the admin password: ${error.message}`);
    }
    password = ADMIN_PASSWORD;
    if (applyTestLicence) {
      try {
        const admin = await apiSession(url, 'admin', password);
        const current = await admin.call('GET', '/license');
        const file = await issueTestLicence(current.body.serial);
        const applied = await admin.call('POST', '/license', { file });
        await admin.dispose();
        if (applied.status !== 200) throw new Error(`${applied.status} ${JSON.stringify(applied.body)}`);
      } catch (error) {
        return fail(`cannot apply the test licence: ${error.message}`);
      }
    }
  }

  return {
    url,
    password,
    initialPassword,
    root,
    version: ready.version,
    readyInfo: ready,
    logPath,
    stop,
  };
}

/**
 * Installs the build tree `buildDir` into a slot of `root` (slot a on an empty root) with its
 * vcrm-supervisor --install, as packaging/dev run's install_into_slot does.
 */
async function installIntoSlot(buildDir, root) {
  const tree = await mkdtemp(path.join('/tmp', 'vcrm-browser-install-'));
  try {
    await promisify(execFile)('cmake', ['--install', buildDir, '--prefix', tree], { maxBuffer: 16 << 20 });
    await promisify(execFile)(path.join(buildDir, 'bin', 'vcrm-supervisor'),
      ['--root', root, '--install', tree, '--into', 'inactive']);
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}

/**
 * A licence file for `serial` made by vcrm-license with the repository's test key; by default
 * one that lifts every limit.
 */
export async function issueTestLicence(serial, { sequence = 1, ports = 1000000, bridges = 10000, licenceId = 'L-TEST-UNLIMITED', validDays = null } = {}) {
  const dayAgo = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const { stdout } = await promisify(execFile)(path.join(binDir, 'vcrm-license'), ['issue',
    '--key', path.join(sourceDir, 'licensing', 'keys', 'vcrm-test-licence.key'), '--serial', serial,
    '--licence-id', licenceId, '--sequence', String(sequence), '--customer', 'vcrm test suite',
    '--upgrades-until', '2099-12-31', '--ports', String(ports), '--bridges', String(bridges),
    '--valid-from', dayAgo, '--issued-at', dayAgo,
    ...(validDays ? ['--valid-until', new Date(Date.now() + validDays * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z')] : [])]);
  return stdout;
}

/** Fills the sign-in form on `page` (which must show it) and submits it. */
export async function submitSignIn(page, username, password) {
  await page.getByLabel('User name', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Launches Debian's Chromium headless, with `extraArgs` added. Close it with browser.close(). */
export function launchBrowser({ extraArgs = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.VCRM_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

/**
 * A fresh browser context (its own cookies) and page. The appliance's certificate is
 * self-signed, hence ignoreHTTPSErrors. `problems` collects uncaught page errors and
 * Content-Security-Policy violations, which a test can assert are absent.
 */
export async function newPage(browser) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 768, height: 1024 }, // a tablet: the narrowest layout we promise
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) {
      problems.push(`CSP: ${message.text()}`);
    }
  });
  return { context, page, problems };
}

/** Saves a full-page screenshot to tests/browser/screenshots/<name>.png; never throws. */
export async function screenshot(page, name) {
  try {
    await mkdir(screenshotDir, { recursive: true });
    await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
  } catch (error) {
    console.error(`screenshot ${name} failed: ${error.message}`);
  }
}

/**
 * Runs `body(page, context)` on a fresh page (own cookies) at `width` px, then screenshots it as
 * `name` and closes it whatever happened. No script error or CSP violation may happen on it.
 */
export async function withPage(browser, name, body, { width = 768 } = {}) {
  const { context, page, problems } = await newPage(browser);
  if (width !== 768) await page.setViewportSize({ width, height: 900 });
  try {
    await body(page, context);
    assert.deepEqual(problems, [], 'no script errors and no Content-Security-Policy violations');
  } finally {
    await screenshot(page, name);
    await context.close();
  }
}
