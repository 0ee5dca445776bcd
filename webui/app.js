// The vcrm console: the sign-in page, then a shell (header, nav, page title) whose pages come from
// webui/pages/index.js and are routed with the History API (the server answers index.html for
// any path without an extension). No inline scripts or styles anywhere: the server's CSP forbids
// them.

import * as api from './api.js';
import pages from './pages/index.js';
import { el } from './lib/ui.js';

const $ = (id) => document.getElementById(id);
const ACCOUNT_PATH = '/account'; // where the password is changed

const ui = {
  loginView: $('login-view'),
  appView: $('app-view'),
  version: $('version'),
  headerVersion: $('header-version'),
  loginForm: $('login-form'),
  loginUsername: $('login-username'),
  loginPassword: $('login-password'),
  loginError: $('login-error'),
  loginSubmit: $('login-submit'),
  userName: $('user-name'),
  logoutButton: $('logout-button'),
  navList: $('nav-list'),
  main: $('main'),
  pageTitle: $('page-title'),
  page: $('page'),
  mustChangePassword: $('must-change-password'),
  appError: $('app-error'),
  liveStatus: $('live-status'),
};

let currentUser = null;

/** Shows `text` in a message element, or hides the element when `text` is empty. */
function showMessage(element, text) {
  element.textContent = text ?? '';
  element.hidden = !text;
}

/** Disables a button while `work` runs, so a form cannot be sent twice. */
async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------
// The live event stream: one EventSource for the whole console, shared by every page.

const EVENT_TYPES = ['conference', 'participant', 'bridge', 'backup', 'restore', 'upgrade'];

const events = (() => {
  const listeners = new Map(); // type -> Set<fn>
  let source = null;
  let retryTimer = null;
  let retryDelay = 1000;
  let wanted = false;

  function dispatch(type, payload) {
    for (const fn of [...(listeners.get(type) ?? [])]) {
      try {
        fn(payload);
      } catch (error) {
        console.error(`event listener for ${type} failed`, error);
      }
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    if (!wanted || source) return;
    source = new EventSource('/api/v1/events');
    source.addEventListener('open', () => {
      retryDelay = 1000;
      dispatch('open');
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        let payload = null;
        try {
          payload = JSON.parse(message.data);
        } catch {
          return;
        }
        dispatch(type, payload);
      });
    }
    source.addEventListener('error', () => {
      // EventSource retries by itself after network trouble; when it gives up (an HTTP error
      // such as 401, or the server went away for good) it is CLOSED and we try again later.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        if (wanted) {
          retryTimer = setTimeout(connect, retryDelay);
          retryDelay = Math.min(retryDelay * 2, 30_000);
        }
      }
    });
  }

  return {
    /** Subscribes `fn` to `type`; returns off(). */
    on(type, fn) {
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
      return () => listeners.get(type)?.delete(fn);
    },
    start() {
      wanted = true;
      connect();
    },
    stop() {
      wanted = false;
      clearTimeout(retryTimer);
      source?.close();
      source = null;
    },
  };
})();

// ---------------------------------------------------------------------------------------------
// Routing

/** Compiles '/conferences/:id' to a matcher returning the params or null. */
function compile(pattern) {
  const names = [];
  const source = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/:([A-Za-z_]\w*)/g, (_, name) => {
    names.push(name);
    return '/([^/]+)';
  });
  const re = new RegExp(`^${source}/?$`);
  return (path) => {
    const m = re.exec(path);
    if (!m) return null;
    const params = {};
    names.forEach((name, i) => {
      params[name] = decodeURIComponent(m[i + 1]);
    });
    return params;
  };
}

const routes = pages.map((page) => ({ page, match: compile(page.path) }));

function hasRole(role) {
  return Boolean(currentUser?.roles?.includes(role));
}

function mayOpen(page) {
  return !page.roles || page.roles.some((role) => hasRole(role));
}

/** The first page this user may open: where "/" and the sign-in lead. */
function homePath() {
  const first = pages.find((page) => page.nav !== false && mayOpen(page));
  return first ? first.path : '/account';
}

function buildNav() {
  ui.navList.replaceChildren();
  for (const page of pages) {
    if (page.nav === false || !mayOpen(page)) continue;
    ui.navList.append(el('li', {}, el('a', { href: page.path, dataset: { path: page.path } }, page.title)));
  }
}

function markNav(path) {
  for (const a of ui.navList.querySelectorAll('a')) {
    const p = a.dataset.path;
    const current = p === path || (p !== '/' && path.startsWith(`${p}/`));
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

let cleanup = null;
let pageOffs = [];
let renderSeq = 0;

function setTitle(text) {
  ui.pageTitle.textContent = text;
  document.title = text ? `${text} · vcrm` : 'vcrm';
}

async function leavePage() {
  const fn = cleanup;
  cleanup = null;
  for (const off of pageOffs) off();
  pageOffs = [];
  if (typeof fn === 'function') {
    try {
      await fn();
    } catch (error) {
      console.error('page cleanup failed', error);
    }
  }
}

async function render({ focus = true } = {}) {
  const seq = ++renderSeq;
  await leavePage();
  if (seq !== renderSeq) return;

  let path = location.pathname;
  if (path === '/' || path === '/index.html') {
    path = homePath();
    history.replaceState(null, '', path + location.search);
  }
  // The server allows nothing but the password change until it is made: go straight there.
  if (currentUser?.must_change_password === true && path !== ACCOUNT_PATH) {
    path = ACCOUNT_PATH;
    history.replaceState(null, '', path);
  }
  showMessage(ui.appError, '');
  ui.page.replaceChildren();
  ui.page.removeAttribute('aria-busy');
  markNav(path);

  let found = null;
  for (const route of routes) {
    const params = route.match(path);
    if (params) {
      found = { page: route.page, params };
      break;
    }
  }
  if (!found) {
    setTitle('Page not found');
    ui.page.append(el('p', {}, 'There is no page at this address. Choose a page from the menu.'));
  } else if (!mayOpen(found.page)) {
    setTitle(found.page.title);
    ui.page.append(el('p', { class: 'message notice' },
      'Your account does not have access to this page. Choose a page from the menu.'));
  } else {
    setTitle(found.page.title);
    const offs = [];
    pageOffs = offs;
    const ctx = {
      api,
      user: currentUser,
      hasRole,
      params: found.params,
      query: new URLSearchParams(location.search),
      navigate,
      events: {
        on(type, fn) {
          const off = events.on(type, fn);
          offs.push(off);
          return off;
        },
      },
      setTitle,
      announce,
      passwordChanged,
      refreshVersion: loadVersion,
    };
    const container = ui.page;
    try {
      const result = await found.page.mount(container, ctx);
      if (seq !== renderSeq) {
        if (typeof result === 'function') result();
        return;
      }
      cleanup = result;
    } catch (error) {
      if (seq !== renderSeq) return;
      console.error(error);
      showMessage(ui.appError, `This page could not be shown: ${error.message}`);
    }
  }
  if (focus) ui.pageTitle.focus();
}

/** Goes to `path` inside the console (pushState), then renders it. */
function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

/** Announces `text` to screen readers through a polite live region. */
function announce(text) {
  ui.liveStatus.textContent = '';
  setTimeout(() => { ui.liveStatus.textContent = text; }, 50);
}

// Same-origin links to console pages navigate without a reload; API links (downloads,
// calendar files) and links with a target or modifier keys behave as usual.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
      event.shiftKey || event.altKey) return;
  const a = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!a || a.target || a.hasAttribute('download') || ui.appView.hidden) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  if (url.pathname === location.pathname && url.hash) return; // in-page anchors (skip link)
  if (/\.[A-Za-z0-9]+$/.test(url.pathname)) return; // files
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => {
  if (!ui.appView.hidden) render();
});

// The skip link moves focus to the main region (its target has tabindex=-1).
document.querySelector('.skip-link')?.addEventListener('click', (event) => {
  event.preventDefault();
  ui.main.focus();
});

// ---------------------------------------------------------------------------------------------
// Signing in and out

function showLogin(message = '') {
  events.stop();
  leavePage();
  currentUser = null;
  ui.page.replaceChildren();
  ui.navList.replaceChildren();
  ui.appView.hidden = true;
  ui.loginView.hidden = false;
  ui.loginPassword.value = '';
  showMessage(ui.appError, '');
  showMessage(ui.loginError, message);
  document.title = 'Sign in · vcrm';
  (ui.loginUsername.value ? ui.loginPassword : ui.loginUsername).focus();
  loadVersion(); // an upgrade (or going back) may have changed it since the page loaded
}

function showApp(user) {
  currentUser = user;
  ui.userName.textContent = user?.username ?? '';
  ui.mustChangePassword.hidden = user?.must_change_password !== true;
  showMessage(ui.loginError, '');
  ui.loginPassword.value = '';
  ui.loginView.hidden = true;
  ui.appView.hidden = false;
  loadVersion();
  buildNav();
  // A one-time password opens no event stream: the server refuses it until the change.
  if (user?.must_change_password !== true) events.start();
  render();
}

/** The account page changed the password: the whole console is open now. */
function passwordChanged() {
  if (!currentUser) return;
  currentUser.must_change_password = false;
  ui.mustChangePassword.hidden = true;
  events.start();
}

api.onPasswordChangeRequired(() => {
  // Set by an admin reset while this page was open, for example.
  if (!currentUser || ui.appView.hidden) return;
  currentUser.must_change_password = true;
  ui.mustChangePassword.hidden = false;
  events.stop();
  if (location.pathname !== ACCOUNT_PATH) navigate(ACCOUNT_PATH, { replace: true });
});

let checkingSession = false;
api.onUnauthorized(async () => {
  if (checkingSession || ui.appView.hidden) return;
  checkingSession = true;
  try {
    await api.getSession();
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401) {
      showLogin('Your session has ended. Sign in again.');
    }
  } finally {
    checkingSession = false;
  }
});

async function loadVersion() {
  try {
    const { version } = await api.getVersion();
    ui.version.textContent = `Version ${version}`;
    ui.headerVersion.textContent = version;
  } catch {
    ui.version.textContent = '';
  }
}

async function restoreSession() {
  try {
    const session = await api.getSession();
    showApp(session.user);
  } catch (error) {
    const unreachable = error instanceof api.ApiError && error.status !== 401;
    showLogin(unreachable ? error.message : '');
  }
}

async function onLogin(event) {
  event.preventDefault();
  showMessage(ui.loginError, '');
  const username = ui.loginUsername.value.trim();
  const password = ui.loginPassword.value;
  if (!username || !password) {
    showMessage(ui.loginError, 'Enter your user name and password.');
    return;
  }
  await busy(ui.loginSubmit, async () => {
    try {
      const user = await api.login(username, password);
      if (location.pathname === '/' || location.pathname === '/index.html') {
        history.replaceState(null, '', homePathFor(user));
      }
      showApp(user);
    } catch (error) {
      ui.loginPassword.value = '';
      showMessage(ui.loginError, error.message);
      ui.loginPassword.focus();
    }
  });
}

function homePathFor(user) {
  const roles = user?.roles ?? [];
  const first = pages.find((page) => page.nav !== false && (!page.roles || page.roles.some((r) => roles.includes(r))));
  return first ? first.path : '/account';
}

async function onLogout() {
  showMessage(ui.appError, '');
  await busy(ui.logoutButton, async () => {
    try {
      await api.logout();
      history.replaceState(null, '', '/');
      showLogin();
    } catch (error) {
      showMessage(ui.appError, `Could not sign out: ${error.message}`);
    }
  });
}

ui.loginForm.addEventListener('submit', onLogin);
ui.logoutButton.addEventListener('click', onLogout);

loadVersion();
restoreSession();
