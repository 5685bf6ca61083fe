// The console's JSON API client: JSON in and out, the CSRF token on every POST, errors as ApiError.

let csrfToken = '';
const unauthenticatedListeners = new Set();

/** Remembers the session's CSRF token (from /api/me) for every later POST. */
export function setCsrfToken(token) {
  csrfToken = token ?? '';
}

/** Calls `fn()` when a request finds the session gone (HTTP 401). */
export function onUnauthenticated(fn) {
  unauthenticatedListeners.add(fn);
  return () => unauthenticatedListeners.delete(fn);
}

/**
 * A failed request. `code` is the gRPC-style code from the body ("INVALID_ARGUMENT", …) or "NETWORK";
 * `fieldViolations` lists {field, description} from the server's field violations.
 */
export class ApiError extends Error {
  constructor(status, code, message, fieldViolations = []) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fieldViolations = fieldViolations;
  }
}

/** Reads an error response's body: {"error": {"code", "message", "field_violations": [...]}}. */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's error page): the status speaks
  }
  const error = body?.error ?? {};
  const violations = Array.isArray(error.field_violations) ? error.field_violations : [];
  return new ApiError(
    response.status,
    error.code ?? `HTTP_${response.status}`,
    error.message ?? response.statusText,
    violations.map((v) => ({ field: String(v.field ?? ''), description: String(v.description ?? '') })),
  );
}

/** Sends one request; resolves to the JSON body (null when empty), rejects with ApiError. */
export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET') {
    headers['X-CSRF-Token'] = csrfToken;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (cause) {
    throw new ApiError(0, 'NETWORK', String(cause?.message ?? cause));
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) for (const fn of unauthenticatedListeners) fn(error);
    throw error;
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** GET `path` with the query parameters that are set (empty strings, null and false are left out). */
export function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    query.set(key, String(value));
  }
  const suffix = query.toString();
  return request('GET', suffix ? `${path}?${suffix}` : path);
}

/** POST `body` as JSON to `path`. */
export function post(path, body = {}) {
  return request('POST', path, body);
}

/** A path segment from an id (ids may hold ":" or "/"). */
export function segment(id) {
  return encodeURIComponent(String(id));
}

export const api = { get, post, request, segment };
