// The vcrm console: sign-in page, then the dashboard and account pages. One page; sections are
// shown and hidden. No inline scripts or styles anywhere (the server's CSP forbids them).

import * as api from './api.js';

const $ = (id) => document.getElementById(id);

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
  dashboardHeading: $('dashboard-heading'),
  mustChangePassword: $('must-change-password'),
  appError: $('app-error'),
  passwordForm: $('password-form'),
  currentPassword: $('current-password'),
  newPassword: $('new-password'),
  confirmPassword: $('confirm-password'),
  passwordError: $('password-error'),
  passwordStatus: $('password-status'),
  passwordSubmit: $('password-submit'),
};

/** Shows `text` in an alert element, or hides the element when `text` is empty. */
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

function showLogin(message = '') {
  ui.appView.hidden = true;
  ui.loginView.hidden = false;
  ui.loginPassword.value = '';
  ui.passwordForm.reset();
  showMessage(ui.passwordError, '');
  ui.passwordStatus.textContent = '';
  showMessage(ui.appError, '');
  showMessage(ui.loginError, message);
  (ui.loginUsername.value ? ui.loginPassword : ui.loginUsername).focus();
}

function showApp(user) {
  ui.userName.textContent = user?.username ?? '';
  ui.mustChangePassword.hidden = user?.must_change_password !== true;
  showMessage(ui.loginError, '');
  ui.loginPassword.value = '';
  ui.loginView.hidden = true;
  ui.appView.hidden = false;
  ui.dashboardHeading.focus();
}

/**
 * A 401 on a signed-in page is either a wrong current password or a session that ended
 * (expired, or signed out elsewhere); asking for the session tells which.
 */
async function sessionEnded(error) {
  if (!(error instanceof api.ApiError) || error.status !== 401) return false;
  try {
    await api.getSession();
    return false;
  } catch (sessionError) {
    return sessionError instanceof api.ApiError && sessionError.status === 401;
  }
}

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
      showApp(user);
    } catch (error) {
      ui.loginPassword.value = '';
      showMessage(ui.loginError, error.message);
      ui.loginPassword.focus();
    }
  });
}

async function onLogout() {
  showMessage(ui.appError, '');
  await busy(ui.logoutButton, async () => {
    try {
      await api.logout();
      showLogin();
    } catch (error) {
      showMessage(ui.appError, `Could not sign out: ${error.message}`);
    }
  });
}

async function onChangePassword(event) {
  event.preventDefault();
  showMessage(ui.passwordError, '');
  ui.passwordStatus.textContent = '';

  const current = ui.currentPassword.value;
  const next = ui.newPassword.value;
  if (!current || !next) {
    showMessage(ui.passwordError, 'Enter your current password and a new password.');
    return;
  }
  if (next !== ui.confirmPassword.value) {
    showMessage(ui.passwordError,
      'The new password and its confirmation do not match. Type the new password twice.');
    ui.confirmPassword.focus();
    return;
  }

  await busy(ui.passwordSubmit, async () => {
    try {
      await api.changePassword(current, next);
      ui.passwordForm.reset();
      ui.mustChangePassword.hidden = true;
      ui.passwordStatus.textContent = 'Password changed.';
    } catch (error) {
      if (await sessionEnded(error)) {
        showLogin('Your session has ended. Sign in again.');
        return;
      }
      showMessage(ui.passwordError, error.message);
    }
  });
}

ui.loginForm.addEventListener('submit', onLogin);
ui.logoutButton.addEventListener('click', onLogout);
ui.passwordForm.addEventListener('submit', onChangePassword);

loadVersion();
restoreSession();
