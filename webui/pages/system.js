// System (admin): the daemon's log level (kept across restarts by the server) and the product
// version and database schema.

import { busy, el, field, messageBox, uniqueId } from '../lib/ui.js';
import { ensureAdminCss, sentence } from '../lib/admin.js';

const LEVELS = [
  { value: 'debug', label: 'debug — most detail' },
  { value: 'info', label: 'info — normal (the default)' },
  { value: 'warn', label: 'warn — problems only' },
  { value: 'error', label: 'error — failures only' },
];

export default {
  path: '/system',
  title: 'System',
  roles: ['admin'],
  nav: true,

  async mount(main, ctx) {
    await ensureAdminCss();
    const api = ctx.api;
    let disposed = false;

    // ---- log level ------------------------------------------------------------------------------

    const levelHeadingId = uniqueId('log-level-heading');
    const current = el('strong', {}, '…');
    const currentLine = el('p', {}, 'Current level: ', current);
    const level = field({
      label: 'Log level', id: 'log-level', type: 'select', options: LEVELS,
      hint: 'vcrmd writes one line per event to standard error; at debug also one per request, with '
        + 'its status and duration. The level takes effect at once and is kept across restarts.',
    });
    level.control.disabled = true;
    const save = el('button', { type: 'submit', class: 'primary', disabled: true }, 'Save log level');
    const levelError = messageBox('alert');
    const levelStatus = messageBox('status');
    const levelForm = el('form', { class: 'stack', 'aria-labelledby': levelHeadingId, novalidate: true },
      currentLine, level, levelError, save, levelStatus);

    function showLevel(value) {
      current.textContent = value;
      level.value = value;
    }

    levelForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      levelError.clear();
      levelStatus.clear();
      const wanted = level.value;
      await busy(save, async () => {
        try {
          const answer = await api.put('/system/log-level', { level: wanted });
          if (disposed) return;
          showLevel(answer?.level ?? wanted);
          levelStatus.show(`Log level set to ${answer?.level ?? wanted}.`);
        } catch (error) {
          levelError.show(`The log level was not changed: ${sentence(error.message)}`);
        }
      });
    });

    // ---- version --------------------------------------------------------------------------------

    const versionHeadingId = uniqueId('version-heading');
    const product = el('dd', {}, '…');
    const version = el('dd', {}, '…');
    const schema = el('dd', {}, '…');
    const versionError = messageBox('alert');

    main.append(
      el('section', { class: 'panel', 'aria-labelledby': levelHeadingId },
        el('h2', { id: levelHeadingId }, 'Log level'), levelForm),
      el('section', { class: 'panel', 'aria-labelledby': versionHeadingId },
        el('h2', { id: versionHeadingId }, 'Version'),
        el('dl', { class: 'details' },
          el('dt', {}, 'Product'), product,
          el('dt', {}, 'Version'), version,
          el('dt', {}, 'Database schema'), schema),
        versionError),
    );

    const [levelAnswer, versionAnswer] = await Promise.allSettled([
      api.get('/system/log-level'),
      api.get('/version'),
    ]);
    if (disposed) return undefined;

    if (levelAnswer.status === 'fulfilled') {
      showLevel(levelAnswer.value?.level ?? '');
      level.control.disabled = false;
      save.disabled = false;
    } else {
      current.textContent = 'unknown';
      levelError.show(`The log level could not be read: ${sentence(levelAnswer.reason?.message)}`);
    }

    if (versionAnswer.status === 'fulfilled') {
      product.textContent = versionAnswer.value?.product ?? '—';
      version.textContent = versionAnswer.value?.version ?? '—';
      schema.textContent = String(versionAnswer.value?.schema ?? '—');
    } else {
      for (const dd of [product, version, schema]) dd.textContent = '—';
      versionError.show(`The version could not be read: ${sentence(versionAnswer.reason?.message)}`);
    }

    return () => {
      disposed = true;
    };
  },
};
