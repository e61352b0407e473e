// Building the page from data without ever parsing data as HTML: every
// text a contact sent goes in as a text node.

// h makes an element: attrs are properties (on*, for event handlers) or,
// for names with a dash or "for", attributes; children are nodes, strings
// or arrays of them, null skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k.includes("-") || k === "for" || k === "role") el.setAttribute(k, v === true ? "" : v);
    else el[k] = v;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// replace puts children in place of el's.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// when formats a time for a message list.
export function when(t) {
  const d = new Date(t);
  if (isNaN(d) || d.getFullYear() < 2000) return "";
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// duration formats nanoseconds in words.
export function duration(ns) {
  const s = ns / 1e9;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${+s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} minutes`;
  if (s < 172800) return `${Math.round(s / 3600)} hours`;
  return `${Math.round(s / 86400)} days`;
}

// bytes formats a size.
export function bytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

let toastTimer;

// toast shows a short message; errors stay until the next one.
export function toast(msg, error = false) {
  const el = document.getElementById("toast");
  el.textContent = msg;
  el.className = error ? "error" : "";
  el.setAttribute("role", error ? "alert" : "status");
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, error ? 10000 : 3000);
}

// fillSelect sets a select's options to names, keeping the choice.
export function fillSelect(sel, names, placeholder) {
  const keep = sel.value;
  sel.replaceChildren(h("option", { value: "" }, placeholder), ...names.map((n) => h("option", { value: n }, n)));
  if (names.includes(keep)) sel.value = keep;
}

const built = new WeakMap();

// replaceIfChanged rebuilds el's children only when key (the data they
// show) differs from the last build, so that a button does not vanish
// from under the user's pointer at every refresh.
export function replaceIfChanged(el, key, build) {
  if (built.get(el) === key) return false;
  built.set(el, key);
  replace(el, build());
  return true;
}
