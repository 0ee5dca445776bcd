// Users (admin): the accounts with their roles, creating one, changing roles, disabling,
// resetting a password and deleting. Every refusal of the server (the last admin, a weak
// password, …) is shown next to the form or the row it concerns.

import { busy, confirmAction, el, field, formatDateTime, messageBox, srOnly, table, uniqueId } from '../lib/ui.js';
import { cardTable, ensureAdminCss, rowActions, sentence } from '../lib/admin.js';

const ROLES = [
  { value: 'admin', label: 'Admin', hint: 'users, bridges, conferences, audit log, log level' },
  { value: 'operator', label: 'Operator', hint: 'upgrade bundles' },
  { value: 'support', label: 'Support', hint: 'backups' },
  { value: 'noc', label: 'NOC', hint: 'watches bridges and redundancy' },
];
const ROLE_LABEL = Object.fromEntries(ROLES.map((r) => [r.value, r.label]));

/**
 * A fieldset of role check boxes with its own error line:
 * `.selected()` → ['admin', …], `.set(roles)`, `.setError(text)`, `.focus()`.
 */
function roleFieldset(idPrefix, legend = 'Roles') {
  const errorId = uniqueId(`${idPrefix}-error`);
  const error = el('p', { id: errorId, class: 'field-error', hidden: true });
  const boxes = ROLES.map((r) => field({
    label: `${r.label} (${r.hint})`, id: `${idPrefix}-${r.value}`, type: 'checkbox', name: `${idPrefix}-role`,
  }));
  boxes.forEach((b, i) => { b.control.value = ROLES[i].value; });
  const set = el('fieldset', { class: 'adm-roles' }, el('legend', {}, legend), boxes, error);
  set.selected = () => boxes.filter((b) => b.control.checked).map((b) => b.control.value);
  set.set = (roles) => boxes.forEach((b) => { b.control.checked = roles.includes(b.control.value); });
  set.setError = (text) => {
    error.textContent = text ?? '';
    error.hidden = !text;
    if (text) set.setAttribute('aria-describedby', errorId);
    else set.removeAttribute('aria-describedby');
  };
  set.focus = () => boxes[0].control.focus();
  return set;
}

export default {
  path: '/users',
  title: 'Users',
  roles: ['admin'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const api = ctx.api;
    const me = ctx.user?.username;
    let users = [];
    let disposed = false;
    const rowErrors = new Map(); // username -> message

    const pageError = messageBox('alert');
    const listStatus = messageBox('status');
    const loading = el('p', { class: 'working' }, 'Loading users…');

    // ---- the list ------------------------------------------------------------------------------

    const focusRow = (name, key) => userTable.querySelector(`[data-focus-key="${CSS.escape(`${name}:${key}`)}"]`);

    // Row buttons whose request is under way (by focus key): the table may be redrawn while it
    // runs, so the busy state lives here; the button stays focusable (aria-disabled).
    const actions = rowActions(() => redraw(), (u) => u.username, (u) => u.username);
    const actionButton = actions.button;
    const rowWork = actions.work;

    function renderActions(u) {
      const self = u.username === me;
      const error = rowErrors.get(u.username);
      return el('div', { class: 'adm-cell-stack' },
        el('div', { class: 'adm-row-actions' },
          actionButton(u, 'roles', 'Edit roles', openRoles),
          actionButton(u, 'password', 'Reset password', openReset),
          self ? null : (u.disabled
            ? actionButton(u, 'disable', 'Enable', (x, key) => setDisabled(x, false, key))
            : actionButton(u, 'disable', 'Disable', (x, key) => setDisabled(x, true, key))),
          self ? null : actionButton(u, 'delete', 'Delete', removeUser, 'danger')),
        error ? el('p', { class: 'message error adm-row-error', role: 'alert' }, error) : null);
    }

    const userTable = table({
      caption: 'User accounts',
      columns: [
        { key: 'username', label: 'User name', render: (u) => (u.username === me ? [u.username, el('span', { class: 'muted' }, ' (you)')] : u.username) },
        { key: 'roles', label: 'Roles', render: (u) => (u.roles ?? []).map((r) => ROLE_LABEL[r] ?? r).join(', ') },
        { key: 'disabled', label: 'Status', render: (u) => el('span', { class: `badge ${u.disabled ? 'down' : 'up'}` }, u.disabled ? 'Disabled' : 'Enabled') },
        { key: 'must_change_password', label: 'Must change password', render: (u) => (u.must_change_password ? 'Yes' : 'No') },
        { key: 'last_login_at', label: 'Last sign-in', render: (u) => (u.last_login_at ? formatDateTime(u.last_login_at) : 'Never') },
        { key: 'actions', label: 'Actions', class: 'adm-actions-cell adm-wide', render: renderActions },
      ].map((c) => (c.render ? { ...c, render: (u) => wrap(c.render(u)) } : c)),
      rows: [],
      empty: 'No users.',
      rowKey: (u) => u.username,
    });
    cardTable(userTable);
    userTable.hidden = true;

    function wrap(content) {
      return Array.isArray(content) ? el('span', {}, content) : content;
    }

    function redraw() {
      if (disposed) return;
      users.sort((a, b) => a.username.localeCompare(b.username));
      userTable.update(users);
      userTable.hidden = false;
      loading.hidden = true;
    }

    function upsert(u) {
      const i = users.findIndex((x) => x.username === u.username);
      if (i >= 0) users[i] = u;
      else users.push(u);
    }

    function setRowError(u, text) {
      if ((rowErrors.get(u.username) ?? '') === (text ?? '')) return;
      if (text) rowErrors.set(u.username, text);
      else rowErrors.delete(u.username);
      redraw();
    }

    async function load() {
      try {
        const answer = await api.get('/users');
        if (disposed) return;
        users = Array.isArray(answer?.users) ? answer.users : [];
        pageError.clear();
        redraw();
      } catch (error) {
        if (disposed) return;
        loading.hidden = true;
        pageError.show(`The users could not be loaded: ${sentence(error.message)}`);
      }
    }

    async function setDisabled(u, disabled, focusKey) {
      setRowError(u, '');
      listStatus.clear();
      closeEditor();
      if (disabled) {
        const ok = await confirmAction({
          title: `Disable ${u.username}?`,
          message: `${u.username} is signed out at once and cannot sign in until the account is enabled again.`,
          confirmLabel: 'Disable account',
        });
        if (!ok) return;
      }
      await rowWork(focusKey, async () => {
        try {
          upsert(await api.patch(`/users/${encodeURIComponent(u.username)}`, { disabled }));
          redraw();
          listStatus.show(disabled ? `${u.username} is disabled.` : `${u.username} is enabled.`);
        } catch (error) {
          setRowError(u, `Could not ${disabled ? 'disable' : 'enable'} ${u.username}: ${sentence(error.message)}`);
        }
      });
    }

    async function removeUser(u, focusKey) {
      setRowError(u, '');
      listStatus.clear();
      closeEditor();
      const ok = await confirmAction({
        title: `Delete ${u.username}?`,
        message: `The account ${u.username} is deleted and its sessions end. The audit log keeps what it did. This cannot be undone.`,
        confirmLabel: 'Delete user',
      });
      if (!ok) return;
      await rowWork(focusKey, async () => {
        try {
          await api.del(`/users/${encodeURIComponent(u.username)}`);
          users = users.filter((x) => x.username !== u.username);
          rowErrors.delete(u.username);
          redraw();
          listStatus.show(`${u.username} is deleted.`);
          userTable.table.focus?.();
        } catch (error) {
          setRowError(u, `Could not delete ${u.username}: ${sentence(error.message)}`);
        }
      });
    }

    // ---- the editor under the list: roles or a new password for one user ---------------------------

    const editorHeadingId = 'user-editor-heading';
    const editorHeading = el('h2', { id: editorHeadingId, tabindex: '-1' });
    const editorBody = el('div', { class: 'stack wide' });
    const editorPanel = el('section', { class: 'panel', 'aria-labelledby': editorHeadingId, hidden: true }, editorHeading, editorBody);
    let editorFor = null; // {username, key}

    function closeEditor({ restoreFocus = false } = {}) {
      const was = editorFor;
      editorFor = null;
      editorPanel.hidden = true;
      editorBody.replaceChildren();
      if (restoreFocus && was) focusRow(was.username, was.key)?.focus();
    }

    function openRoles(u) {
      setRowError(u, '');
      listStatus.clear();
      editorFor = { username: u.username, key: 'roles' };
      editorHeading.textContent = `Roles of ${u.username}`;
      const roles = roleFieldset('edit-role');
      roles.set(u.roles ?? []);
      const error = messageBox('alert');
      const save = el('button', { type: 'submit', class: 'primary' }, 'Save roles');
      const cancel = el('button', { type: 'button', onclick: () => closeEditor({ restoreFocus: true }) }, 'Cancel');
      const form = el('form', { class: 'stack', 'aria-labelledby': editorHeadingId, novalidate: true },
        el('p', { class: 'muted' }, `Changing the roles signs ${u.username} out of every session.`),
        roles, error, el('div', { class: 'actions' }, save, cancel));
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        error.clear();
        roles.setError('');
        const chosen = roles.selected();
        if (chosen.length === 0) {
          roles.setError('Choose at least one role.');
          roles.focus();
          return;
        }
        await busy(save, async () => {
          try {
            upsert(await api.patch(`/users/${encodeURIComponent(u.username)}`, { roles: chosen }));
            redraw();
            closeEditor({ restoreFocus: true });
            listStatus.show(`Roles of ${u.username} saved.`);
          } catch (e) {
            if (e.code === 'invalid_roles') {
              roles.setError(sentence(e.message));
              roles.focus();
            } else {
              error.show(`The roles were not saved: ${sentence(e.message)}`);
            }
          }
        });
      });
      editorBody.replaceChildren(form);
      editorPanel.hidden = false;
      editorPanel.scrollIntoView({ block: 'nearest' });
      roles.focus();
    }

    function openReset(u) {
      setRowError(u, '');
      listStatus.clear();
      editorFor = { username: u.username, key: 'password' };
      editorHeading.textContent = `Reset password of ${u.username}`;
      const pw = field({
        label: 'New password', id: 'reset-password', type: 'password', required: true, autocomplete: 'new-password',
        hint: `At least 10 characters. ${u.username} must choose a new one at the next sign-in.`,
      });
      const confirm = field({ label: 'Confirm new password', id: 'reset-password-confirm', type: 'password', required: true, autocomplete: 'new-password' });
      const error = messageBox('alert');
      const save = el('button', { type: 'submit', class: 'primary' }, 'Reset password');
      const cancel = el('button', { type: 'button', onclick: () => closeEditor({ restoreFocus: true }) }, 'Cancel');
      const form = el('form', { class: 'stack', 'aria-labelledby': editorHeadingId, novalidate: true },
        el('p', { class: 'muted' }, `Resetting the password signs ${u.username} out of every session.`),
        pw, confirm, error, el('div', { class: 'actions' }, save, cancel));
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        error.clear();
        pw.setError('');
        confirm.setError('');
        if (!pw.value) {
          pw.setError('Enter the new password.');
          pw.control.focus();
          return;
        }
        if (pw.value !== confirm.value) {
          confirm.setError('The two passwords do not match. Type the new password twice.');
          confirm.control.focus();
          return;
        }
        await busy(save, async () => {
          try {
            upsert(await api.patch(`/users/${encodeURIComponent(u.username)}`, { password: pw.value }));
            redraw();
            closeEditor({ restoreFocus: true });
            listStatus.show(`The password of ${u.username} is reset. They must change it when they sign in.`);
          } catch (e) {
            if (e.code === 'weak_password') {
              pw.setError(sentence(e.message));
              pw.control.focus();
            } else {
              error.show(`The password was not reset: ${sentence(e.message)}`);
            }
          }
        });
      });
      editorBody.replaceChildren(form);
      editorPanel.hidden = false;
      editorPanel.scrollIntoView({ block: 'nearest' });
      pw.control.focus();
    }

    // ---- create ---------------------------------------------------------------------------------

    const createHeadingId = 'user-create-heading';
    const cName = field({
      label: 'User name', id: 'new-user-name', required: true, maxlength: 64, autocomplete: 'off',
      hint: 'Lower-case letters, digits, ".", "_" or "-", starting with a letter.',
    });
    cName.control.setAttribute('autocapitalize', 'none');
    cName.control.setAttribute('spellcheck', 'false');
    const cPassword = field({
      label: 'Password', id: 'new-user-password', type: 'password', required: true, autocomplete: 'new-password',
      hint: 'At least 10 characters. The user must change it at the first sign-in.',
    });
    const cRoles = roleFieldset('new-user-role');
    const createError = messageBox('alert');
    const createStatus = messageBox('status');
    const createButton = el('button', { type: 'submit', class: 'primary' }, 'Create user');
    const createForm = el('form', { class: 'stack', 'aria-labelledby': createHeadingId, novalidate: true },
      cName, cPassword, cRoles, createError, createButton, createStatus);

    createForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      createError.clear();
      createStatus.clear();
      cName.setError('');
      cPassword.setError('');
      cRoles.setError('');
      const username = cName.value.trim();
      const password = cPassword.value;
      const roles = cRoles.selected();
      const problems = [];
      if (!username) problems.push([cName, 'Enter a user name.']);
      if (!password) problems.push([cPassword, 'Enter a password for the new user.']);
      if (roles.length === 0) problems.push([cRoles, 'Choose at least one role.']);
      if (problems.length) {
        for (const [f, text] of problems) f.setError(text);
        const first = problems[0][0];
        (first.control ?? first).focus();
        return;
      }
      await busy(createButton, async () => {
        try {
          const created = await api.post('/users', { username, password, roles });
          upsert(created);
          redraw();
          createForm.reset();
          createStatus.show(`User ${created.username} created.`);
          cName.control.focus();
        } catch (e) {
          const text = sentence(e.message);
          if (e.code === 'weak_password') {
            cPassword.setError(text);
            cPassword.control.focus();
          } else if (e.code === 'invalid_username' || e.code === 'user_exists') {
            cName.setError(text);
            cName.control.focus();
          } else if (e.code === 'invalid_roles') {
            cRoles.setError(text);
            cRoles.focus();
          } else {
            createError.show(`The user was not created: ${text}`);
            return;
          }
          createError.show('The user was not created. Correct the field marked above.');
        }
      });
    });

    main.append(
      pageError,
      el('section', { class: 'panel adm-table-panel', 'aria-label': 'User list' }, loading, userTable, listStatus),
      editorPanel,
      el('section', { class: 'panel', 'aria-labelledby': createHeadingId },
        el('h2', { id: createHeadingId }, 'Create user'), createForm),
    );

    await load();
    return () => {
      disposed = true;
    };
  },
};
