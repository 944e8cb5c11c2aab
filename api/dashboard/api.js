// The only way the dashboard reads data: the public /v1 API with the signed-in key.
// The key lives in this tab's sessionStorage and travels only in the Authorization header.

const KEY = 'sendtrace.apiKey';

export const auth = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

/** A refused or failed request; `problem` is the RFC 9457 body when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && (problem.detail || problem.title);
    super(status === 0 ? 'The service cannot be reached.' : `${status}: ${detail || 'request failed'}`);
    this.status = status;
    this.problem = problem || null;
  }
  /** Per-parameter reasons of a 400, as "parameter: reason". */
  get reasons() {
    return (this.problem?.errors || []).map((e) => `${e.parameter}: ${e.detail}`);
  }
}

/** Query string of `params`; arrays repeat the name, empty values are left out. */
export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      if (one !== undefined && one !== null && one !== '') q.append(k, String(one));
    }
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** `GET path?params` (or another method with a JSON body); resolves to the parsed JSON. */
export async function api(path, { params, method = 'GET', body } = {}) {
  const key = auth.key();
  if (!key) throw new ApiError(401, { title: 'Not signed in' });
  const headers = { Authorization: `Bearer ${key}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path + query(params), { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (resp.status === 401) window.dispatchEvent(new CustomEvent('sendtrace:unauthorized'));
    throw err;
  }
  return data;
}

/** Path segment: addresses and ids may hold `@`, `+`, `/`. */
export const seg = (s) => encodeURIComponent(s);
