// The JSON API, called as the signed-in person: their ID token goes in the Authorization
// header, never in a URL. Where the token comes from is the sign-in's business (signin.js
// chooses the source: a development token, or the Firebase SDK's); api.js asks the source
// before every call, so a token near its expiry is refreshed before it is sent.

const NAME = "care-console.name";
let source = null; // { signedIn(): boolean, token(): Promise<string>, end(): Promise<void> }

/** Thrown by a token source when its sign-in can no longer give tokens (revoked, disabled). */
export class SignedOut extends Error {}

export function useTokenSource(tokens) {
  source = tokens;
}

export const session = {
  get signedIn() {
    return Boolean(source && source.signedIn());
  },
  get name() {
    return window.sessionStorage.getItem(NAME) || "";
  },
  setName(name) {
    window.sessionStorage.setItem(NAME, name || "");
  },
  token() {
    return source.token();
  },
  /** Forget this tab's sign-in (the tokens and the name). */
  async end() {
    window.sessionStorage.removeItem(NAME);
    if (source) await source.end();
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

let ending = null;
/** The server or the SDK no longer accepts this sign-in: forget it and say so, once, however
 * many calls were in flight. */
function lost() {
  if (!ending && session.signedIn) {
    ending = session.end().then(() => {
      ending = null;
      onSignedOut();
    });
  }
  return ending || Promise.resolve();
}

async function bearer() {
  try {
    return `Bearer ${await session.token()}`;
  } catch (err) {
    if (!(err instanceof SignedOut)) throw err;
    await lost();
    throw new ApiError(401, { message: "Your sign-in ended; sign in again." });
  }
}

/** One call; resolves to {data, pagination} or throws ApiError. */
export async function call(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...(extraHeaders || {}) };
  const signedIn = session.signedIn;
  if (signedIn) headers.Authorization = await bearer();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const data = response.status === 204 ? null : await parse(response);
  if (response.status === 401 && signedIn) await lost();
  if (!response.ok) throw new ApiError(response.status, data);
  const raw = response.headers.get("X-Pagination");
  return { data, pagination: raw ? JSON.parse(raw) : null, etag: response.headers.get("ETag") };
}

/** Sign out: the API ends this sign-in (its tokens are refused from now on), then the tab
 * forgets them. Offline or already ended, the tab forgets them all the same. */
export async function endSession() {
  try {
    if (session.signedIn) {
      await fetch("/me/sign-out", {
        method: "POST",
        headers: { Accept: "application/json", Authorization: `Bearer ${await session.token()}` },
        credentials: "omit",
        cache: "no-store",
      });
    }
  } catch (err) {
    console.warn("The server could not be told of the sign-out:", err.message);
  }
  await session.end();
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
