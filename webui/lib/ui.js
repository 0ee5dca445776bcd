// Small DOM helpers shared by every page of the console. No framework: elements are built with
// DOM calls (the Content-Security-Policy forbids inline script and style attributes, so nothing
// here ever writes a style="" attribute or innerHTML).

let uid = 0;
/** A document-unique id with `prefix`. */
export function uniqueId(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * Creates an element. `props`: attributes (`class`, `for`, `id`, `aria-*`, `role`, `href`, …),
 * booleans (`hidden`, `disabled`, `required`, `checked`, … set as properties when true/false),
 * `value` (set as a property), `dataset` (an object), and `on<event>` functions attached with
 * addEventListener (`onclick`, `onsubmit`, `oninput`, …). `children`: nodes or strings (arrays are
 * flattened; null, undefined and false are skipped).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (key === 'value' || key === 'checked' || key === 'selected' || key === 'indeterminate') {
      node[key] = value;
    } else if (typeof value === 'boolean') {
      if (key in node && !key.startsWith('aria-')) node[key] = value;
      else if (key.startsWith('aria-')) node.setAttribute(key, String(value));
      else if (value) node.setAttribute(key, '');
    } else if (key === 'class' || key === 'className') {
      node.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value);
    } else {
      node.setAttribute(key === 'htmlFor' ? 'for' : key, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false || child === '') continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** Removes every child of `node` and appends `children` (same rules as el()). */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/**
 * A labelled form control in a `.field` wrapper:
 *   field({label, id, type = 'text', value, required, min, max, step, options, hint, name,
 *          placeholder, autocomplete, inputmode, pattern, maxlength, checked})
 * `type: 'select'` with `options: [{value, label}]` makes a <select>; `type: 'checkbox'` puts the
 * label after the box; `type: 'textarea'` a <textarea>. The wrapper has `.control` (the input),
 * `.value` (getter/setter), and `.setError(text)` which shows a message under the control, sets
 * aria-invalid and links it with aria-describedby (`setError('')` clears it).
 */
export function field({
  label, id = uniqueId('field'), type = 'text', value, required = false, min, max, step, options,
  hint, name, placeholder, autocomplete, inputmode, pattern, maxlength, checked, disabled,
} = {}) {
  let control;
  const common = {
    id, name: name ?? id, required: required || undefined, disabled: disabled || undefined,
  };
  if (type === 'select') {
    control = el('select', common,
      (options ?? []).map((o) => el('option', { value: String(o.value) }, o.label ?? String(o.value))));
    if (value !== undefined && value !== null) control.value = String(value);
  } else if (type === 'textarea') {
    control = el('textarea', { ...common, placeholder, maxlength });
    if (value !== undefined && value !== null) control.value = String(value);
  } else {
    control = el('input', {
      ...common, type, min, max, step, placeholder, autocomplete, inputmode, pattern, maxlength,
    });
    if (type === 'checkbox' || type === 'radio') control.checked = Boolean(checked ?? value);
    else if (value !== undefined && value !== null) control.value = String(value);
  }

  const labelNode = el('label', { for: id }, label);
  const describedBy = [];
  let hintNode = null;
  if (hint) {
    hintNode = el('p', { id: `${id}-hint`, class: 'hint' }, hint);
    describedBy.push(hintNode.id);
  }
  const errorNode = el('p', { id: `${id}-error`, class: 'field-error', hidden: true });
  if (describedBy.length) control.setAttribute('aria-describedby', describedBy.join(' '));

  const wrapper = type === 'checkbox' || type === 'radio'
    ? el('div', { class: 'field field-check' }, control, labelNode, hintNode, errorNode)
    : el('div', { class: 'field' }, labelNode, control, hintNode, errorNode);
  wrapper.control = control;
  Object.defineProperty(wrapper, 'value', {
    get: () => (type === 'checkbox' || type === 'radio' ? control.checked : control.value),
    set: (v) => {
      if (type === 'checkbox' || type === 'radio') control.checked = Boolean(v);
      else control.value = v ?? '';
    },
  });
  wrapper.setError = (text) => {
    errorNode.textContent = text ?? '';
    errorNode.hidden = !text;
    const ids = [...describedBy];
    if (text) {
      ids.push(errorNode.id);
      control.setAttribute('aria-invalid', 'true');
    } else {
      control.removeAttribute('aria-invalid');
    }
    if (ids.length) control.setAttribute('aria-describedby', ids.join(' '));
    else control.removeAttribute('aria-describedby');
  };
  return wrapper;
}

/**
 * A message area: `messageBox('alert')` (errors; role=alert) or `messageBox('status')` (progress
 * and results; role=status). `.show(text)` shows it, `.clear()` empties and hides it, so an
 * empty box is never announced or found by role.
 */
export function messageBox(kind = 'status') {
  const box = el('p', {
    role: kind === 'alert' ? 'alert' : 'status',
    class: `message ${kind === 'alert' ? 'error' : 'success'}`,
    hidden: true,
  });
  box.show = (text) => {
    box.textContent = text ?? '';
    box.hidden = !text;
    return box;
  };
  box.clear = () => box.show('');
  return box;
}

/**
 * Runs `fn` with `button` marked busy and unavailable (aria-busy and aria-disabled on the button,
 * aria-busy on its form, a spinner by CSS), then restores it, also on failure. The button keeps
 * keyboard focus (it is not `disabled`, which would drop focus to the page); clicks while busy
 * are ignored (resolve undefined). Returns what `fn` returns.
 */
export async function busy(button, fn) {
  if (button.getAttribute('aria-busy') === 'true') return undefined;
  const container = button.form ?? button.closest('[data-busy-scope]');
  const block = (event) => {
    event.preventDefault();
    event.stopImmediatePropagation();
  };
  button.setAttribute('aria-busy', 'true');
  button.setAttribute('aria-disabled', 'true');
  button.classList.add('is-busy');
  button.addEventListener('click', block, true);
  container?.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.removeAttribute('aria-busy');
    button.removeAttribute('aria-disabled');
    button.classList.remove('is-busy');
    button.removeEventListener('click', block, true);
    container?.removeAttribute('aria-busy');
  }
}

/**
 * Asks for confirmation in a modal <dialog> (role dialog, named by `title`, described by
 * `message`). Focus moves to the dialog's Cancel button; Escape or Cancel resolves false, the
 * confirm button true. Focus returns to where it was.
 */
export function confirmAction({ title, message, confirmLabel = 'Confirm', cancelLabel = 'Cancel', danger = true } = {}) {
  return new Promise((resolve) => {
    const returnTo = document.activeElement;
    const titleId = uniqueId('dialog-title');
    const messageId = uniqueId('dialog-message');
    const cancel = el('button', { type: 'button' }, cancelLabel);
    const confirm = el('button', { type: 'button', class: danger ? 'danger' : 'primary' }, confirmLabel);
    const dialog = el('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'aria-describedby': messageId },
      el('h2', { id: titleId }, title),
      el('p', { id: messageId }, message),
      el('div', { class: 'actions' }, cancel, confirm));
    let answered = false;
    const finish = (answer) => {
      if (answered) return;
      answered = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      if (returnTo && returnTo.isConnected && typeof returnTo.focus === 'function') returnTo.focus();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    confirm.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); finish(false); });
    dialog.addEventListener('close', () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/**
 * "22 Nov 2026, 09:00" (the viewer's locale) of an RFC 3339 time, in `timeZone` (IANA) or the
 * viewer's zone. Empty input gives "—".
 */
export function formatDateTime(iso, timeZone, { seconds = false, zoneName = false } = {}) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const options = {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    hourCycle: 'h23',
  };
  if (seconds) options.second = '2-digit';
  if (timeZone) options.timeZone = timeZone;
  if (zoneName) options.timeZoneName = 'short';
  try {
    return new Intl.DateTimeFormat(undefined, options).format(t);
  } catch {
    delete options.timeZone;
    return new Intl.DateTimeFormat(undefined, options).format(t);
  }
}

/**
 * Rewrites the RFC 3339 times in a server message ("… free at 2026-11-22T05:15:00.000Z") as the
 * viewer reads times ("… free at Nov 22, 2026, 05:15"), in `timeZone` or the viewer's zone.
 */
export function plainTimes(text, timeZone) {
  return String(text ?? '').replace(
    /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})/g,
    (iso) => formatDateTime(iso, timeZone));
}

/** "09:00" of an RFC 3339 time in `timeZone` (or the viewer's). */
export function formatTime(iso, timeZone) {
  if (!iso) return '—';
  const options = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (timeZone) options.timeZone = timeZone;
  return new Intl.DateTimeFormat(undefined, options).format(Date.parse(iso));
}

/** "45 s", "5 min", "1 h 05 min", "2 d 3 h" from seconds; null gives "—". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '—';
  let s = Math.max(0, Math.round(Number(seconds)));
  if (s < 60) return `${s} s`;
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  const sec = s - m * 60;
  if (d > 0) return h ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
  return sec ? `${m} min ${sec} s` : `${m} min`;
}

/**
 * An accessible table in a horizontally scrollable wrapper:
 *   table({caption, columns: [{key, label, render?(row) → node|string, class?}], rows, empty,
 *          rowKey?(row) → string})
 * Returns the wrapper <div class="table-wrap"> with `.table` (the <table>) and `.update(rows)`,
 * which re-renders the body and keeps keyboard focus on the control with the same
 * `data-focus-key` if there was one. `empty` is the text of the single row shown when there are
 * no rows. The first column's cells are row headers (<th scope=row>). `hideCaption: true` keeps
 * the caption for screen readers only (when a visible heading already says the same).
 */
export function table({ caption, columns, rows = [], empty = 'Nothing to show.', rowKey, hideCaption = false } = {}) {
  const tbody = el('tbody');
  const tableNode = el('table', { class: 'data', tabindex: '-1' },
    caption ? el('caption', { class: hideCaption ? 'sr-only' : undefined }, caption) : null,
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.class }, c.label)))),
    tbody);
  const wrapper = el('div', { class: 'table-wrap' }, tableNode);
  wrapper.table = tableNode;
  wrapper.update = (newRows) => {
    const active = document.activeElement;
    const focusKey = active && tableNode.contains(active) ? active.dataset?.focusKey : undefined;
    tbody.replaceChildren();
    if (!newRows || newRows.length === 0) {
      tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: String(columns.length) }, empty)));
    } else {
      for (const row of newRows) {
        const tr = el('tr', rowKey ? { dataset: { key: String(rowKey(row)) } } : {});
        columns.forEach((c, i) => {
          let content = c.render ? c.render(row) : row[c.key];
          if (content === null || content === undefined || content === '') content = '—';
          tr.append(el(i === 0 ? 'th' : 'td', { scope: i === 0 ? 'row' : undefined, class: c.class },
            content instanceof Node ? content : String(content)));
        });
        tbody.append(tr);
      }
    }
    if (focusKey) {
      const again = [...tableNode.querySelectorAll('[data-focus-key]')].find((n) => n.dataset.focusKey === focusKey);
      if (again) again.focus();
      else tableNode.focus?.();
    }
  };
  wrapper.update(rows);
  return wrapper;
}

/** A visually hidden span for screen readers only. */
export function srOnly(text) {
  return el('span', { class: 'sr-only' }, text);
}

/** A section with an h2 heading: section(title, ...children) → <section aria-labelledby>. */
export function section(title, ...children) {
  const headingId = uniqueId('section');
  return el('section', { class: 'panel', 'aria-labelledby': headingId },
    el('h2', { id: headingId }, title), ...children);
}

/** Calls `fn` at most once per `ms`, at the end of a burst of calls. */
export function debounce(fn, ms = 200) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** A link that navigates inside the app (History API) when ctx.navigate is wired by app.js. */
export function link(href, text, props = {}) {
  return el('a', { href, 'data-route': '', ...props }, text);
}
