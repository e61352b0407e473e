// Talking to the client daemon: the session, the control operations and
// the live events. Every POST carries the session's CSRF token.

let csrf = "";

// Locked is thrown when the interface is locked.
export class Locked extends Error {}

// session loads the session (and its CSRF token).
export async function session() {
  const r = await fetch("/api/session", { credentials: "same-origin" });
  if (!r.ok) throw new Error(await r.text());
  const s = await r.json();
  csrf = s.csrf;
  return s;
}

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Backchannel-CSRF": csrf },
    body: JSON.stringify(body),
  });
  let data = {};
  try { data = await r.json(); } catch { /* a refusal in plain text */ }
  if (r.status === 423 || data.locked) throw new Locked(data.error || "locked");
  if (!r.ok || data.error) throw new Error(plain(data.error || `the daemon answered ${r.status}`));
  return data;
}

// plain turns an error from the daemon into words for the user: without
// the package names Go puts in front.
export function plain(msg) {
  return String(msg).replace(/^(?:[a-z]+: )+/, "").replace(/^./, (c) => c.toUpperCase());
}

// op asks the daemon one control operation with its arguments (see
// package control: each operation has its own request and response types)
// and returns the operation's response.
export async function op(name, args = {}) {
  const r = await post("/api/op", { version: 2, op: name, args });
  if (r.drafted) return { ...(r.result || {}), drafted: true };
  return r.result || {};
}

// unlock sends the passphrase, as base64 of its UTF-8 bytes, and the
// officer's name if one was typed (the passphrase must be theirs).
export function unlock(passphrase, officer = "") {
  const b = new TextEncoder().encode(passphrase);
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  b.fill(0);
  return post("/api/unlock", { passphrase: btoa(s), officer });
}

export const lock = () => post("/api/lock", {});
export const activity = () => post("/api/activity", {}).catch(() => {});

// events calls on(event) for each server-sent event: "lock" (with
// {locked, wiped}), "change" and "tick". The browser reconnects by itself.
export function events(on) {
  const es = new EventSource("/api/events");
  for (const name of ["lock", "change", "tick"]) {
    es.addEventListener(name, (e) => on(name, JSON.parse(e.data || "{}")));
  }
  es.onerror = () => on("disconnected", {});
  es.onopen = () => on("connected", {});
  return es;
}
