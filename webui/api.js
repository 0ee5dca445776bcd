// A small wrapper around the vcrm JSON API (same origin, session cookie).
//
// The bearer token the login answer carries is never kept: the browser holds the HttpOnly
// session cookie, and the CSRF token lives only in this module's memory. It is fetched again
// from /auth/session when the page loads.

const BASE = '/api/v1';

/** An API call that failed: `status` is the HTTP status (0 when the server was unreachable). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let csrfToken = null;
let unauthorizedHandler = null;
let passwordChangeHandler = null;

/**
 * Registers `fn(error)` to be called when a request outside /auth/ answers 401: the session has
 * ended (expired, signed out elsewhere, roles changed). app.js uses it to show the sign-in page.
 */
export function onUnauthorized(fn) {
  unauthorizedHandler = typeof fn === 'function' ? fn : null;
}

/**
 * Registers `fn(error)` to be called when a request answers 403 password_change_required: the
 * account signed in with a one-time password, and the server allows nothing else until it is
 * changed. app.js uses it to take the user to the password form.
 */
export function onPasswordChangeRequired(fn) {
  passwordChangeHandler = typeof fn === 'function' ? fn : null;
}

/** "/conferences?from=…&to=…" from a path and an object of query parameters (empty ones skipped). */
export function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}${path.includes('?') ? '&' : '?'}${text}` : path;
}

/**
 * The URL of an API resource for a plain link or a download (CSV, .ics): the browser sends the
 * session cookie with it. `downloadUrl('/cdrs/conferences', {format: 'csv'})`.
 */
export function downloadUrl(path, params = {}) {
  return BASE + withQuery(path, params);
}

function setCsrfToken(token) {
  csrfToken = typeof token === 'string' && token !== '' ? token : null;
}

/** Sends one request and returns the parsed JSON body (null when there is none). */
export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['Content-Type'] = 'application/json';
    if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
    if (body !== undefined) init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, 'unreachable',
      'Cannot reach the vcrm server. Check the network connection and try again.');
  }

  const text = await response.text();
  const data = parseJson(text);
  if (!response.ok) {
    throw failure(path, response.status, response.statusText, data, response.headers.get('Retry-After'));
  }
  return data;
}

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * The ApiError for a refused request (its message is the server's, in plain words), after
 * telling the handlers about an ended session or a password that must be changed.
 */
function failure(path, status, statusText, data, retryAfterHeader) {
  const error = data && typeof data.error === 'object' ? data.error : {};
  const message = typeof error.message === 'string' && error.message
    ? error.message
    : `The server answered ${status} ${statusText}. Try again.`;
  const retryAfter = Number.parseInt(retryAfterHeader ?? '', 10);
  const result = new ApiError(status, error.code ?? `http_${status}`, message,
    Number.isFinite(retryAfter) ? retryAfter : null);
  if (status === 401 && !path.startsWith('/auth/') && unauthorizedHandler) {
    try {
      unauthorizedHandler(result);
    } catch {
      // the handler's own trouble must not hide this error
    }
  }
  if (status === 403 && result.code === 'password_change_required' && passwordChangeHandler) {
    try {
      passwordChangeHandler(result);
    } catch {
      // as above
    }
  }
  return result;
}

/**
 * Sends one request with a raw body (a Blob, e.g. a slice of a chosen file) and the given
 * headers, reporting `onProgress(bytesSent)` while the body goes out (fetch cannot, hence
 * XMLHttpRequest). `path` is under /api/v1 (or a full "/api/v1/…" path such as an upload's
 * Location). Resolves {status, header(name), data}; a refusal throws an ApiError as request() does,
 * and an unreachable server one with status 0.
 */
export function sendRaw(method, path, { headers = {}, body = null, onProgress, signal } = {}) {
  const apiPath = path.startsWith(`${BASE}/`) ? path.slice(BASE.length) : path;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, BASE + apiPath);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    if (csrfToken && method !== 'GET' && method !== 'HEAD') xhr.setRequestHeader('X-CSRF-Token', csrfToken);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, String(value));
    if (onProgress) xhr.upload.addEventListener('progress', (event) => onProgress(event.loaded));
    const unreachable = () => reject(new ApiError(0, 'unreachable',
      'Cannot reach the vcrm server. Check the network connection and try again.'));
    xhr.addEventListener('error', unreachable);
    xhr.addEventListener('timeout', unreachable);
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'The transfer was stopped.')));
    xhr.addEventListener('load', () => {
      const data = parseJson(xhr.responseText);
      if (xhr.status < 200 || xhr.status >= 300) {
        reject(failure(apiPath, xhr.status, xhr.statusText, data, xhr.getResponseHeader('Retry-After')));
        return;
      }
      resolve({ status: xhr.status, header: (name) => xhr.getResponseHeader(name), data });
    });
    if (signal) {
      if (signal.aborted) {
        xhr.abort();
        return;
      }
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    xhr.send(body);
  });
}

/** GET `path` with query parameters. */
export function get(path, params) {
  return request('GET', params ? withQuery(path, params) : path);
}

/** POST a JSON body. */
export function post(path, body) {
  return request('POST', path, body);
}

/** PATCH a JSON body. */
export function patch(path, body) {
  return request('PATCH', path, body);
}

/** PUT a JSON body. */
export function put(path, body) {
  return request('PUT', path, body);
}

/** DELETE `path` (with query parameters). */
export function del(path, params) {
  return request('DELETE', params ? withQuery(path, params) : path);
}

/** GET /version: {product, version, schema}. */
export function getVersion() {
  return request('GET', '/version');
}

/** The current session's {user, csrf_token}; throws an ApiError with status 401 when signed out. */
export async function getSession() {
  const session = await request('GET', '/auth/session');
  setCsrfToken(session?.csrf_token);
  return session;
}

/** Signs in; returns the user. The token in the answer is deliberately dropped. */
export async function login(username, password) {
  const answer = await request('POST', '/auth/login', { username, password });
  setCsrfToken(answer?.csrf_token);
  return answer?.user;
}

/** Signs out; an already-ended session counts as signed out. */
export async function logout() {
  try {
    await request('POST', '/auth/logout');
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
  }
  setCsrfToken(null);
}

export function changePassword(currentPassword, newPassword) {
  return request('POST', '/auth/password', {
    current_password: currentPassword,
    new_password: newPassword,
  });
}
