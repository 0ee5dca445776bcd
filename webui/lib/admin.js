// Helpers shared by the admin pages (bridges, users, audit, system, account, backups, upgrade).

import { el, srOnly, uniqueId } from './ui.js';

/**
 * Loads /pages/admin.css once (the CSP allows same-origin style sheets, not style attributes);
 * resolves when it has loaded (or failed, or after 2 s), so the page is not drawn unstyled.
 */
export function ensureAdminCss() {
  let link = document.querySelector('link[data-admin-css]');
  if (!link) {
    link = el('link', { rel: 'stylesheet', href: '/pages/admin.css', 'data-admin-css': '' });
    const done = () => { link.dataset.adminCss = 'done'; };
    link.addEventListener('load', done, { once: true });
    link.addEventListener('error', done, { once: true });
    document.head.append(link);
  }
  if (link.dataset.adminCss === 'done') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    const finish = () => { clearTimeout(timer); resolve(); };
    link.addEventListener('load', finish, { once: true });
    link.addEventListener('error', finish, { once: true });
  });
}

/**
 * Lets a ui.table() wrapper turn into one card per row on narrow screens (admin.css): every
 * cell gets its column's name in data-label, and explicit ARIA table roles keep the table
 * semantics that browsers drop once table parts are no longer displayed as a table.
 */
export function cardTable(wrapper) {
  const tableNode = wrapper.table;
  wrapper.classList.add('adm-table', 'adm-cards');
  tableNode.tabIndex = -1; // focus lands here when the row that had it goes away
  const caption = tableNode.caption;
  if (caption) {
    caption.id ||= uniqueId('table-caption');
    tableNode.setAttribute('aria-labelledby', caption.id);
  }
  const apply = () => {
    tableNode.setAttribute('role', 'table');
    const head = tableNode.tHead;
    const names = head ? [...head.rows[0].cells].map((c) => c.textContent.trim()) : [];
    for (const group of [head, ...tableNode.tBodies]) group?.setAttribute('role', 'rowgroup');
    for (const tr of tableNode.rows) {
      tr.setAttribute('role', 'row');
      const inHead = tr.parentElement === head;
      [...tr.cells].forEach((cell, i) => {
        if (inHead) cell.setAttribute('role', 'columnheader');
        else cell.setAttribute('role', cell.tagName === 'TH' ? 'rowheader' : 'cell');
        if (!inHead && !tr.classList.contains('empty') && names[i]) cell.dataset.label = names[i];
      });
    }
  };
  const update = wrapper.update;
  wrapper.update = (rows) => {
    update(rows);
    apply();
  };
  apply();
  return wrapper;
}

/** A server message as a sentence: capital first letter, final full stop. */
export function sentence(text) {
  const t = String(text ?? '').trim();
  if (!t) return '';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/**
 * Row action buttons for an admin table. A button being worked on shows busy and ignores
 * clicks; `redraw` re-renders the table (focus follows data-focus-key). `idOf` and `nameOf`
 * give a row's key and the name read out after the button's label.
 */
export function rowActions(redraw, idOf, nameOf) {
  const pending = new Set();
  return {
    button(row, key, label, onClick, extraClass) {
      const focusKey = `${idOf(row)}:${key}`;
      const isPending = pending.has(focusKey);
      return el('button', {
        type: 'button',
        class: ['small', extraClass, isPending && 'is-busy'],
        'aria-disabled': isPending ? 'true' : undefined,
        dataset: { focusKey },
        onclick: () => {
          if (!pending.has(focusKey)) onClick(row, focusKey);
        },
      }, label, srOnly(` ${nameOf(row)}`));
    },
    /** Runs `fn` with the row button `focusKey` shown busy. */
    async work(focusKey, fn) {
      pending.add(focusKey);
      redraw();
      try {
        return await fn();
      } finally {
        pending.delete(focusKey);
        redraw();
      }
    },
  };
}

/** "1.4 MB" (decimal units, as browsers and file managers show file sizes). */
export function formatBytes(n) {
  const value = Number(n);
  if (!Number.isFinite(value)) return '—';
  if (value < 1000) return `${value} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = value;
  let i = -1;
  do {
    v /= 1000;
    i += 1;
  } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/**
 * A labelled progress bar with a line of text under it: `.set(done, total, text)` (total 0 or
 * unknown: an indeterminate bar), `.hide()`. Hidden until set.
 */
export function progressBar(labelText) {
  const id = uniqueId('progress');
  const bar = el('progress', { id, max: '100' });
  const text = el('p', { class: 'progress-text', id: `${id}-text` });
  bar.setAttribute('aria-describedby', text.id);
  const node = el('div', { class: 'progress-field', hidden: true },
    el('label', { for: id }, labelText), bar, text);
  node.set = (done, total, caption) => {
    node.hidden = false;
    const d = Number(done);
    const t = Number(total);
    if (Number.isFinite(d) && Number.isFinite(t) && t > 0) {
      const pct = Math.max(0, Math.min(100, Math.floor((d / t) * 100)));
      bar.value = pct;
      text.textContent = caption ? `${caption}: ${pct} %` : `${pct} %`;
    } else {
      bar.removeAttribute('value'); // indeterminate: the total is not known yet
      text.textContent = caption && d > 0 ? `${caption}: ${formatBytes(d)}` : caption ?? '';
    }
  };
  node.finish = (caption) => {
    node.hidden = false;
    bar.value = 100;
    text.textContent = caption;
  };
  node.hide = () => {
    node.hidden = true;
  };
  return node;
}

/** A description list from [term, value] pairs, leaving out pairs whose value is missing. */
export function details(pairs) {
  return el('dl', { class: 'details' }, pairs
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([dt, dd]) => [el('dt', {}, dt), el('dd', {}, dd instanceof Node ? dd : String(dd))]));
}

/** The reason a failed job gives, as a sentence. */
export function reasonOf(thing) {
  const r = thing?.error ?? thing?.message ?? thing?.reason;
  if (!r) return '';
  if (typeof r === 'object') return sentence(r.message ?? r.code ?? '');
  return sentence(r);
}

/**
 * Timers a page cancels when it is left: `later(fn, ms)` runs `fn` after `ms` unless `stop()`
 * (the page's cleanup) ran first.
 */
export function pageTimers() {
  const timers = new Set();
  return {
    later(fn, ms) {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
    },
    stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}

/**
 * Checks a passphrase typed twice (two ui.field()s): at least `min` characters, the same both
 * times. Says what is wrong under the field and focuses it; true when the pair is fine.
 */
export function checkPassphrasePair(first, second, min) {
  first.setError('');
  second.setError('');
  if (first.value.length < min) {
    first.setError(`Use a passphrase of at least ${min} characters.`);
    first.control.focus();
    return false;
  }
  if (first.value !== second.value) {
    second.setError('The two passphrases differ: type the same one twice.');
    second.control.focus();
    return false;
  }
  return true;
}
