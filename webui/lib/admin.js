// Helpers shared by the admin pages (bridges, users, audit, system, account).

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
