// One small page API over two browser engines, so a workflow test runs unchanged in both:
// Debian's Chromium driven by playwright-core, and Debian's firefox-esr driven by puppeteer-core
// over WebDriver BiDi. Elements are found the way a user finds them — a region by its heading,
// a control by its label, a button by its text, a dialog by its title — by one script that runs
// in the page (the same in both engines); clicks, typing and file choices then go through each
// engine's real input (not element.click() in the page).

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { launchBrowser, newPage, screenshotDir } from './appliance.mjs';

const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * Runs in the page: the element `query` names, or null; with `query.as === 'text'` its visible
 * text instead. `query` = {within?: region heading, dialog?: dialog title, kind:
 * 'region'|'button'|'link'|'control'|'progressbar'|'text', name or pattern (a RegExp source)}.
 * Names match the whole visible text (trimmed, spaces collapsed). Hidden elements never match.
 * Passed to the engines as a function (not eval'd in the page, which the CSP forbids).
 */
function findInPage(query) {
  const norm = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();
  const matches = (text) => (query.pattern ? new RegExp(query.pattern).test(norm(text)) : norm(text) === query.name);
  const shown = (e) => Boolean(e) && e.getClientRects().length > 0 && !e.closest('[hidden]');
  const headingOf = (box) => norm(document.getElementById(box.getAttribute('aria-labelledby') ?? '')?.textContent);
  const result = (e) => (query.as === 'text' ? (e ? norm(e.innerText) : null) : e ?? null);
  let scope = document;
  if (query.dialog) {
    scope = [...document.querySelectorAll('dialog[open]')].find((d) => headingOf(d) === query.dialog) ?? null;
  }
  if (scope && query.within) {
    scope = [...scope.querySelectorAll('section[aria-labelledby]')].find((s) => shown(s) && headingOf(s) === query.within) ?? null;
  }
  if (!scope) return result(null);
  const pick = (selector, textOf = (e) => e.textContent) => [...scope.querySelectorAll(selector)]
    .find((e) => shown(e) && matches(textOf(e))) ?? null;
  const labelled = () => {
    const label = [...scope.querySelectorAll('label')].find((l) => shown(l) && matches(l.textContent));
    const control = label ? document.getElementById(label.htmlFor) : null;
    return control && !control.closest('[hidden]') ? control : null;
  };
  switch (query.kind) {
    case 'region':
      return result(scope === document ? pick('section[aria-labelledby]', headingOf) : scope);
    case 'button':
      return result(pick('button, a.button, input[type=submit]'));
    case 'link':
      return result(pick('a[href]'));
    case 'control':
    case 'progressbar':
      return result(labelled());
    case 'text':
      return result(pick('p, li, dd, td, th, h1, h2, h3, pre, strong, code'));
    default:
      throw new Error(`unknown kind ${query.kind}`);
  }
}

const queryOf = (kind, name, scope = {}) => (name instanceof RegExp
  ? { kind, pattern: name.source, ...scope }
  : { kind, name, ...scope });

/**
 * The engine-neutral page: every method waits (up to `timeout` ms) for what it names to show.
 * `scope` = {within: 'Region heading'} or {dialog: 'Dialog title'}.
 */
class PageDriver {
  constructor(engine, adapter, problems) {
    this.engine = engine;
    this.adapter = adapter;
    this.problems = problems;
  }

  async handle(kind, name, scope, timeout = DEFAULT_TIMEOUT_MS) {
    const query = queryOf(kind, name, scope);
    const deadline = Date.now() + timeout;
    for (;;) {
      const found = await this.adapter.elementFor(findInPage, query);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`${this.engine}: no ${kind} ${name}${scope?.within ? ` in region "${scope.within}"` : ''}`
          + `${scope?.dialog ? ` in dialog "${scope.dialog}"` : ''} within ${timeout} ms`);
      }
      await new Promise((resolve) => { setTimeout(resolve, 100); });
    }
  }

  goto(url) { return this.adapter.goto(url); }

  reload() { return this.adapter.reload(); }

  /** Whether the element shows now (no waiting). */
  async visible(kind, name, scope) {
    return (await this.adapter.evaluate(findInPage, { ...queryOf(kind, name, scope), as: 'text' })) !== null;
  }

  async waitFor(kind, name, scope, timeout = DEFAULT_TIMEOUT_MS) {
    await this.adapter.release(await this.handle(kind, name, scope, timeout));
  }

  /** The visible text of the element, once it shows. */
  async text(kind, name, scope, timeout = DEFAULT_TIMEOUT_MS) {
    await this.waitFor(kind, name, scope, timeout);
    return this.adapter.evaluate(findInPage, { ...queryOf(kind, name, scope), as: 'text' });
  }

  /** Runs `fn(handle)` on the element once it shows, then lets go of the handle. */
  async using(kind, name, scope, fn, timeout) {
    const h = await this.handle(kind, name, scope, timeout);
    try {
      return await fn(h);
    } finally {
      await this.adapter.release(h);
    }
  }

  click(buttonName, scope, timeout) {
    return this.using('button', buttonName, scope, (h) => this.adapter.click(h), timeout);
  }

  clickLink(linkName, scope) {
    return this.using('link', linkName, scope, (h) => this.adapter.click(h));
  }

  /** Types `value` into the labelled control, replacing what it held. */
  fill(label, value, scope) {
    return this.using('control', label, scope, (h) => this.adapter.fill(h, value));
  }

  /** Ticks the labelled checkbox (by clicking it) unless it is ticked. */
  check(label, scope) {
    return this.using('control', label, scope, async (h) => {
      if (!await this.adapter.property(h, 'checked')) await this.adapter.click(h);
    });
  }

  chooseFile(label, file, scope) {
    return this.using('control', label, scope, (h) => this.adapter.setFile(h, file));
  }

  /** A property of the element (`value` of a progress bar, `checked` of a box, …). */
  property(kind, name, scope, prop) {
    return this.using(kind, name, scope, (h) => this.adapter.property(h, prop));
  }

  /** Runs `fn(arg)` in the page and returns its (serialisable) result. */
  evaluate(fn, arg) { return this.adapter.evaluate(fn, arg); }

  async screenshot(name) {
    try {
      await mkdir(screenshotDir, { recursive: true });
      await this.adapter.screenshot(path.join(screenshotDir, `${name}-${this.engine}.png`));
    } catch (error) {
      console.error(`screenshot ${name} in ${this.engine} failed: ${error.message}`);
    }
  }
}

// ---- the adapters: what differs between the engines' page APIs -----------------------------

/** What playwright-core's and puppeteer-core's pages and element handles do alike. */
function commonAdapter(page) {
  return {
    goto: (url) => page.goto(url),
    reload: () => page.reload(),
    async elementFor(find, query) {
      const h = await page.evaluateHandle(find, query);
      const e = h.asElement();
      if (!e) await h.dispose();
      return e;
    },
    release: (h) => h.dispose(),
    click: (h) => h.click(),
    property: (h, prop) => h.evaluate((e, p) => e[p], prop),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    screenshot: (file) => page.screenshot({ path: file, fullPage: true }),
  };
}

// Chromium through playwright-core.
const playwrightAdapter = (page) => ({
  ...commonAdapter(page),
  fill: (h, value) => h.fill(value),
  setFile: (h, file) => h.setInputFiles(file),
});

// Firefox through puppeteer-core over WebDriver BiDi.
const puppeteerAdapter = (page) => ({
  ...commonAdapter(page),
  async fill(h, value) {
    await h.evaluate((e) => { e.value = ''; });
    await h.type(value);
  },
  setFile: (h, file) => h.uploadFile(file),
});

async function chromiumEngine() {
  const browser = await launchBrowser();
  return {
    name: 'chromium',
    async newPage() {
      const { context, page, problems } = await newPage(browser);
      return { page: new PageDriver('chromium', playwrightAdapter(page), problems), close: () => context.close() };
    },
    close: () => browser.close(),
  };
}

async function firefoxEngine() {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.VCRM_FIREFOX ?? '/usr/bin/firefox-esr',
    protocol: 'webDriverBiDi',
    headless: true,
    acceptInsecureCerts: true, // the appliance's self-signed certificate
    // No update checks, telemetry or other calls home from a test run.
    extraPrefsFirefox: {
      'app.update.enabled': false,
      'browser.shell.checkDefaultBrowser': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'toolkit.telemetry.enabled': false,
    },
  });
  return {
    name: 'firefox',
    async newPage() {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      await page.setViewport({ width: 768, height: 1024 });
      page.setDefaultTimeout(DEFAULT_TIMEOUT_MS);
      const problems = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (/Content.Security.Policy/i.test(message.text()) && message.type() === 'error') problems.push(`CSP: ${message.text()}`);
      });
      return { page: new PageDriver('firefox', puppeteerAdapter(page), problems), close: () => context.close() };
    },
    close: () => browser.close(),
  };
}

/** The engines a workflow test runs in: {name, launch()}; launch() → {name, newPage(), close()}. */
export const ENGINES = [
  { name: 'chromium', launch: chromiumEngine },
  { name: 'firefox', launch: firefoxEngine },
];

/**
 * Runs `body(page)` on a fresh page of `engine` (own cookies), then screenshots it as
 * `<name>-<engine>` and closes it whatever happened. No script error or CSP violation may
 * happen on it.
 */
export async function withDriverPage(engine, name, body) {
  const { page, close } = await engine.newPage();
  try {
    await body(page);
    if (page.problems.length) throw new Error(`script errors or CSP violations in ${engine.name}: ${page.problems.join('; ')}`);
  } finally {
    await page.screenshot(name);
    await close();
  }
}

/** Signs in on the sign-in form the page shows. */
export async function driverSignIn(page, username, password) {
  await page.fill('User name', username);
  await page.fill('Password', password);
  await page.click('Sign in');
}
