// The web interface's page: the lock screen, the sidebar and one view at a
// time, chosen by the address's fragment (#/c/NAME, #/desk…), kept up to
// date by the daemon's events.
import * as api from "./api.js";
import { h, replace, toast } from "./dom.js";
import { conversation, addContact, myCard } from "./views/contacts.js";
import { introductions, desk, checks } from "./views/desk.js";
import { network, home } from "./views/network.js";
import { drafts, audit } from "./views/officers.js";

const $ = (id) => document.getElementById(id);

// state is what the daemon last said.
const state = {
  contacts: [], inbox: [], outbox: [], stats: null, network: null,
  introductions: [], desk: [], conveyances: [], checks: [], card: "",
  drafts: [], officer: "", // the officer this page acts as
  seen: {}, // incoming messages seen per contact, for unread counts
};

let view = null; // {el, update()} of the current view
let locked = true;

// ctx is what views get: the state and the ways to act.
const ctx = {
  state,
  // act runs a user's action: the button is disabled meanwhile, an
  // error is shown in words, and everything is refreshed after.
  async act(button, fn, done) {
    if (button) button.disabled = true;
    try {
      const r = await fn();
      if (r && r.drafted) toast(`Kept as a draft: it leaves when another officer with the ${r.needs} role approves it`);
      else if (done) toast(done);
      await refresh();
      return r;
    } catch (e) {
      failed(e);
    } finally {
      if (button) button.disabled = false;
    }
  },
  go(hash) { location.hash = hash; },
  wiped() { showWiped(); },
};

function failed(e) {
  if (e instanceof api.Locked) showLock();
  else {
    console.error(e.message);
    toast(e.message, true);
  }
}

// Refreshes overlap (an action's own, the daemon's events): what one
// fetched is dropped if a refresh started after it was applied first, so
// that an older answer never puts back what an action just changed.
let refreshesStarted = 0;
let allApplied = 0; // the latest full refresh applied
let statusApplied = 0; // the latest refresh of the status applied

async function refresh() {
  if (locked) return;
  const started = ++refreshesStarted;
  try {
    const [contacts, inbox, status, intros, deskList, conv, chk, drafted] = await Promise.all([
      api.op("contact-list"), api.op("inbox"), api.op("status"), api.op("intro-list"),
      api.op("desk-list"), api.op("convey-list"), api.op("check-list"), api.op("drafts"),
    ]);
    if (started < allApplied) return;
    allApplied = started;
    if (started > statusApplied) {
      statusApplied = started;
      state.outbox = status.messages || [];
      state.stats = status.stats || null;
      state.network = status.network || null;
    }
    state.drafts = drafted.drafts || [];
    state.contacts = contacts.contacts || [];
    state.inbox = inbox.messages || [];
    state.introductions = intros.introductions || [];
    state.desk = deskList.desk || [];
    state.conveyances = conv.conveyances || [];
    state.checks = chk.checks || [];
  } catch (e) {
    failed(e);
    return;
  }
  whenReleased(drawAll);
}

function drawAll() {
  if (view) view.update(); // first: it marks what the user has seen
  renderSidebar();
}

async function refreshStatus() {
  if (locked) return;
  const started = ++refreshesStarted;
  try {
    const status = await api.op("status");
    if (started < statusApplied) return;
    statusApplied = started;
    state.outbox = status.messages || [];
    state.stats = status.stats || null;
    state.network = status.network || null;
  } catch (e) {
    if (e instanceof api.Locked) showLock();
    return;
  }
  whenReleased(drawStatus);
}

function drawStatus() {
  renderSidebar();
  if (view && view.tick) view.tick();
}

// While a pointer is pressed, what the daemon's events would redraw waits
// until just after the release: a list rebuilt between a click's press and
// its release loses the click (the press lands on an element that is gone).
// A press that never sees its release (the window lost focus) holds
// nothing for more than two seconds.
let pressed = false;
let pressTimer;
const afterRelease = new Set();

function whenReleased(draw) {
  if (pressed) afterRelease.add(draw);
  else draw();
}

function onPress() {
  pressed = true;
  clearTimeout(pressTimer);
  pressTimer = setTimeout(onRelease, 2000);
}

function onRelease() {
  pressed = false;
  clearTimeout(pressTimer);
  // The click follows the release in the same task: draw after it.
  setTimeout(() => {
    if (pressed) return;
    const draws = [...afterRelease];
    afterRelease.clear();
    for (const draw of draws) draw();
  });
}

// contactRows keeps each contact's sidebar row from one refresh to the
// next, updated in place: a row rebuilt between the press and the release
// of a click would swallow the click (a contact's session changes state
// just when a reply comes in, which is when the user clicks it).
const contactRows = new Map(); // contact name → its <li>

function contactRow(c, unread) {
  let li = contactRows.get(c.Name);
  if (!li) {
    li = h("li", {},
      h("a", { href: "#/c/" + encodeURIComponent(c.Name), "data-contact": c.Name },
        h("span", { className: "name" }, c.Name),
        h("span", { className: "pill ok", title: "Safety number verified" }, "verified"),
        h("span", { className: "count" })));
    contactRows.set(c.Name, li);
  }
  const a = li.firstChild;
  const [, verified, count] = a.children;
  a.classList.toggle("active", current() === a.getAttribute("href"));
  verified.hidden = !c.Verified;
  const n = unread > 0 ? String(unread) : "";
  if (count.textContent !== n) count.textContent = n;
  return li;
}

function renderSidebar() {
  const list = $("contacts");
  const names = new Set(state.contacts.map((c) => c.Name));
  for (const name of contactRows.keys()) if (!names.has(name)) contactRows.delete(name);
  const rows = state.contacts.map((c) => contactRow(c, state.inbox.filter((m) => m.Contact === c.Name).length - (state.seen[c.Name] ?? 0)));
  if (rows.length === 0) rows.push(list.querySelector("li.empty") || h("li", { className: "empty" }, "No contacts yet."));
  // Move only what is out of place, so that rows stay where they are.
  rows.forEach((li, i) => { if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null); });
  while (list.children.length > rows.length) list.lastElementChild.remove();
  const pending = {
    introductions: state.introductions.filter((i) => i.State === "pending").length,
    desk: state.desk.filter((d) => d.State === "pending").length,
    checks: state.checks.filter((c) => !c.Asked && c.Result === "pending" && c.Answer === "undecided").length,
    drafts: state.drafts.filter((d) => d.state === "pending" && d.drafted_by !== state.officer).length,
  };
  for (const el of document.querySelectorAll("[data-count]")) {
    const n = pending[el.dataset.count];
    el.textContent = n ? String(n) : "";
  }
  const s = state.stats;
  const conn = $("connection");
  if (s && s.DocumentProblem) { conn.textContent = "stopped"; conn.className = "pill bad"; conn.title = s.DocumentProblem; }
  else if (s && s.Connected) { conn.textContent = "connected"; conn.className = "pill ok"; conn.title = "Linked to your provider"; }
  else { conn.textContent = "offline"; conn.className = "pill warn"; conn.title = (s && s.LastError) || "Not linked to your provider"; }
}

function current() { return location.hash || "#/"; }

// route mounts the view the address names.
function route() {
  const hash = current();
  let v;
  if (hash.startsWith("#/c/")) v = conversation(ctx, decodeURIComponent(hash.slice(4)));
  else v = ({
    "#/add": addContact, "#/me": myCard, "#/introductions": introductions,
    "#/desk": desk, "#/checks": checks, "#/network": network, "#/drafts": drafts, "#/audit": audit,
  }[hash] || home)(ctx);
  view = v;
  replace($("view"), h("a", { href: "#/", className: "back" }, "← Contacts"), v.el);
  for (const a of document.querySelectorAll("#sidebar a")) a.classList.toggle("active", a.getAttribute("href") === hash);
  v.update(); // a conversation marks its messages seen: the sidebar's count goes
  renderSidebar();
  $("view").focus({ preventScroll: true });
  document.body.classList.toggle("viewing", hash !== "#/");
}

function showLock(reason) {
  locked = true;
  $("app").hidden = true;
  $("lock-screen").hidden = false;
  $("lock-reason").textContent = reason || "Locked. Type your passphrase to go on; your client keeps receiving meanwhile.";
  $("passphrase").value = "";
  $("passphrase").focus();
}

function showWiped() {
  locked = true;
  $("app").hidden = true;
  $("lock-screen").hidden = true;
  $("wiped-screen").hidden = false;
}

async function showApp() {
  locked = false;
  try {
    state.officer = (await api.session()).officer || "";
  } catch { /* the session is there: the page loaded with it */ }
  $("officer").textContent = state.officer;
  $("lock-screen").hidden = true;
  $("app").hidden = false;
  await refresh();
  route();
}

// Report the user's activity, at most every 20 s, so that the interface
// stays unlocked while it is used.
let lastActivity = 0;
function onActivity() {
  if (locked) return;
  const now = Date.now();
  if (now - lastActivity > 20000) {
    lastActivity = now;
    api.activity();
  }
}

let pending = null;
function scheduleRefresh() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh(); }, 50);
}

async function main() {
  let s;
  try {
    s = await api.session();
  } catch (e) {
    document.body.replaceChildren(h("p", { className: "error" }, "This page needs the address `backchannel ui` printed. " + e.message));
    return;
  }
  $("unlock-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const btn = $("unlock");
    btn.disabled = true;
    $("unlock-error").textContent = "";
    btn.textContent = "Unlocking…";
    try {
      await api.unlock($("passphrase").value, $("officer-name").value.trim());
      $("passphrase").value = "";
      await showApp();
    } catch (err) {
      $("unlock-error").textContent = err.message;
      $("passphrase").select();
    } finally {
      btn.disabled = false;
      btn.textContent = "Unlock";
    }
  });
  $("lock").addEventListener("click", () => api.lock().catch(() => {}).finally(() => showLock("Locked.")));
  for (const ev of ["keydown", "pointerdown", "wheel"]) document.addEventListener(ev, onActivity, { passive: true });
  document.addEventListener("pointerdown", onPress, { capture: true, passive: true });
  for (const ev of ["pointerup", "pointercancel"]) document.addEventListener(ev, onRelease, { capture: true, passive: true });
  window.addEventListener("hashchange", route);
  api.events((name, data) => {
    if (name === "lock") {
      if (data.wiped) showWiped();
      else if (data.locked && !locked) showLock("Locked after idle time. Your client keeps receiving meanwhile.");
      else if (!data.locked && locked && $("lock-screen").hidden === false && s.opened) { /* unlocked elsewhere: wait for this page's user */ }
    } else if (name === "change") scheduleRefresh();
    else if (name === "tick") refreshStatus();
  });
  if (s.wiped) showWiped();
  else if (s.locked) showLock(s.opened ? "Locked. Type your passphrase to go on." : "Type your passphrase to open your messages.");
  else showApp();
}

main();
