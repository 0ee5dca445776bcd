// Account (everyone): who is signed in, and changing one's own password.

import { busy, el, field, messageBox, uniqueId } from '../lib/ui.js';
import { ensureAdminCss, sentence } from '../lib/admin.js';

const ROLE_LABEL = { admin: 'Admin', operator: 'Operator', support: 'Support', noc: 'NOC' };

export default {
  path: '/account',
  title: 'Account',
  roles: ['admin', 'operator', 'support', 'noc'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const user = ctx.user ?? {};

    // ---- who ------------------------------------------------------------------------------------

    const whoHeadingId = uniqueId('account-heading');
    const who = el('section', { class: 'panel', 'aria-labelledby': whoHeadingId },
      el('h2', { id: whoHeadingId }, 'Your account'),
      el('dl', { class: 'details' },
        el('dt', {}, 'User name'), el('dd', {}, user.username ?? '—'),
        el('dt', {}, 'Roles'), el('dd', {}, (user.roles ?? []).map((r) => ROLE_LABEL[r] ?? r).join(', ') || '—')));

    // ---- change password ------------------------------------------------------------------------

    const headingId = 'password-heading';
    const current = field({
      label: 'Current password', id: 'current-password', type: 'password', required: true,
      autocomplete: 'current-password',
    });
    const next = field({
      label: 'New password', id: 'new-password', type: 'password', required: true, autocomplete: 'new-password',
      hint: 'At least 10 characters, not your user name. A few unrelated words make a good one.',
    });
    const confirm = field({
      label: 'Confirm new password', id: 'confirm-password', type: 'password', required: true,
      autocomplete: 'new-password',
    });
    const error = messageBox('alert');
    const status = messageBox('status');
    const submit = el('button', { type: 'submit', class: 'primary' }, 'Change password');
    const notice = user.must_change_password
      ? el('p', { class: 'message notice' }, 'You signed in with a one-time password. Choose your own password now: the rest of the console opens once you have.')
      : null;
    const form = el('form', { class: 'stack', 'aria-labelledby': headingId, novalidate: true },
      notice, current, next, confirm, error, submit, status);

    function clearErrors() {
      error.clear();
      status.clear();
      current.setError('');
      next.setError('');
      confirm.setError('');
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors();
      if (!current.value) {
        current.setError('Enter your current password.');
        error.show('The password was not changed. Correct the field marked above.');
        current.control.focus();
        return;
      }
      if (!next.value) {
        next.setError('Enter a new password.');
        error.show('The password was not changed. Correct the field marked above.');
        next.control.focus();
        return;
      }
      if (next.value !== confirm.value) {
        confirm.setError('Type the same new password again.');
        error.show('The new password and its confirmation do not match. Type the new password twice.');
        confirm.control.focus();
        return;
      }
      await busy(submit, async () => {
        try {
          await ctx.api.changePassword(current.value, next.value);
          form.reset();
          notice?.remove();
          // The shell opens the rest of the console and drops its one-time password reminder.
          ctx.passwordChanged?.();
          status.show('Password changed.');
        } catch (e) {
          const text = sentence(e.message);
          if (e.code === 'wrong_password') {
            current.setError(text);
            error.show('The password was not changed. Correct the field marked above.');
            current.control.focus();
          } else if (e.code === 'weak_password') {
            next.setError(text);
            error.show('The password was not changed. Correct the field marked above.');
            next.control.focus();
          } else {
            error.show(`The password was not changed: ${text}`);
          }
        }
      });
    });

    main.append(who, el('section', { class: 'panel', 'aria-labelledby': headingId },
      el('h2', { id: headingId }, 'Change password'), form));
  },
};
