// Talking to the Kith API: tokens (the access token in memory, the refresh
// token in local storage so a reload keeps the session), quiet refresh, and
// errors as values a page can show next to the field they concern.

const REFRESH_KEY = "kith.refresh";
const ACTIVITY_KEY = "kith.active";
const IDLE_LIMIT_MS = 30 * 60 * 1000;

let access = null;
let account = null;
let refreshing = null;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.error || "error";
    this.field = body?.field || null;
  }
}

export function me() {
  return account;
}

export function signedIn() {
  return access !== null;
}

function remember(tokens) {
  access = tokens.access_token;
  account = tokens.account || account;
  localStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  touch();
}

export function forget() {
  access = null;
  account = null;
  localStorage.removeItem(REFRESH_KEY);
}

export function touch() {
  localStorage.setItem(ACTIVITY_KEY, String(Date.now()));
}

export function idleTooLong() {
  const last = Number(localStorage.getItem(ACTIVITY_KEY) || 0);
  return Date.now() - last > IDLE_LIMIT_MS;
}

async function refresh() {
  const token = localStorage.getItem(REFRESH_KEY);
  if (!token) return false;
  refreshing ??= fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: token }),
  })
    .then(async (res) => {
      if (!res.ok) {
        forget();
        return false;
      }
      const tokens = await res.json();
      access = tokens.access_token;
      localStorage.setItem(REFRESH_KEY, tokens.refresh_token);
      if (!account) account = await call("GET", "/me");
      return true;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Restores a session after a reload, if the refresh token still works. */
export async function resume() {
  if (idleTooLong()) {
    forget();
    return false;
  }
  return refresh();
}

async function send(method, path, body) {
  const headers = {};
  if (access) headers.authorization = `Bearer ${access}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  // A function body is read at send time (after a refresh may have rotated tokens).
  const payload = typeof body === "function" ? body() : body;
  return fetch(`/api/v1${path}`, {
    method,
    headers,
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
}

/** Calls the API; refreshes the access token once when it has expired. */
export async function call(method, path, body) {
  let res = await send(method, path, body);
  if (res.status === 401 && access && (await refresh())) {
    res = await send(method, path, body);
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Fetches a file (the hours CSV) with the session's token. */
export async function download(path) {
  let res = await send("GET", path);
  if (res.status === 401 && (await refresh())) res = await send("GET", path);
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  return res.blob();
}

/**
 * Signs in with the password. With two-step sign-in on, the server answers
 * with a challenge instead of tokens: returns it, for `signInWithCode`.
 */
export async function signIn(email, password) {
  const answer = await call("POST", "/auth/login", { email, password });
  if (answer.challenge) return answer;
  remember(answer);
  return null;
}

/** The second step: the code from the authenticator app, or a recovery code. */
export async function signInWithCode(challenge, code) {
  remember(await call("POST", "/auth/login/code", { challenge, code }));
}

/** Registers (the server emails a link to verify the address), then signs in. */
export async function signUp(email, password, display_name) {
  const registered = await call("POST", "/auth/register", { email, password, display_name });
  await signIn(email, password);
  return registered;
}

/** Reads the account again (after its address was verified or changed). */
export async function reloadAccount() {
  if (access) account = await call("GET", "/me");
  return account;
}

export async function signOut() {
  try {
    // The refresh token as it is when the request leaves: an expired access
    // token is refreshed first, which rotates it, and sending the old one
    // would look like reuse.
    if (access) await call("POST", "/auth/logout", () => ({ refresh_token: localStorage.getItem(REFRESH_KEY) }));
  } catch {
    // Already ended on the server; this browser forgets it either way.
  } finally {
    forget();
  }
}

/** Opens a room websocket with a single-use ticket. */
export async function openSocket(groupId) {
  const ticket = await call("POST", "/ws/ticket", { group_id: groupId });
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return new WebSocket(`${scheme}://${location.host}${ticket.url}`);
}
