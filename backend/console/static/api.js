// The JSON API, called as the signed-in person: their ID token goes in the Authorization
// header (never in a URL), kept in this tab's sessionStorage (never a cookie).

const TOKEN = "care-console.token";
const NAME = "care-console.name";

export const session = {
  get token() {
    return window.sessionStorage.getItem(TOKEN);
  },
  get name() {
    return window.sessionStorage.getItem(NAME) || "";
  },
  start(token, name) {
    window.sessionStorage.setItem(TOKEN, token);
    window.sessionStorage.setItem(NAME, name || "");
  },
  setName(name) {
    window.sessionStorage.setItem(NAME, name || "");
  },
  end() {
    window.sessionStorage.removeItem(TOKEN);
    window.sessionStorage.removeItem(NAME);
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered ${status}.`);
    this.status = status;
    this.body = body;
  }
}

let onSignedOut = () => {};
/** What to do when the server no longer accepts the token (expired, signed out). */
export function whenSignedOut(fn) {
  onSignedOut = fn;
}

async function parse(response) {
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : null;
}

/** One call; resolves to {data, pagination} or throws ApiError. */
export async function call(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...(extraHeaders || {}) };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const data = response.status === 204 ? null : await parse(response);
  if (response.status === 401 && session.token) {
    session.end();
    onSignedOut();
  }
  if (!response.ok) throw new ApiError(response.status, data);
  const raw = response.headers.get("X-Pagination");
  return { data, pagination: raw ? JSON.parse(raw) : null, etag: response.headers.get("ETag") };
}

export async function get(path) {
  return (await call("GET", path)).data;
}

export async function post(path, body) {
  return (await call("POST", path, body ?? {})).data;
}

export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  }
  const text = q.toString();
  return text ? `${path}?${text}` : path;
}

/** Every page of a paginated list (page_size 100), up to `limit` items. */
export async function all(path, params, limit = 5000) {
  const items = [];
  for (let page = 1; ; page += 1) {
    const { data, pagination } = await call("GET", query(path, { ...params, page, page_size: 100 }));
    items.push(...data);
    if (!pagination || page >= pagination.total_pages || items.length >= limit) return items;
  }
}
