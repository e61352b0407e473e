// Contacts: a conversation with one contact, adding a contact from a card,
// and the user's own card (with wiping).
import * as api from "../api.js";
import { h, replace, replaceIfChanged, when, bytes, duration, toast } from "../dom.js";

const statusWords = {
  queued: "queued", sent: "sent", delivered: "delivered", failed: "failed",
};

const expiries = [
  ["0", "Off"], [String(5 * 60e9), "5 minutes"], [String(3600e9), "1 hour"],
  [String(86400e9), "1 day"], [String(7 * 86400e9), "1 week"],
];

const budgets = [
  ["0", "the default (3 days)"], [String(86400e9), "1 day"], [String(7 * 86400e9), "1 week"], [String(14 * 86400e9), "2 weeks"],
];

// known is a time the client reported, or null for Go's zero time (an
// unknown sending time: the sender's software is older).
function known(t) {
  const d = new Date(t);
  return isNaN(d) || d.getFullYear() < 2000 ? null : d;
}

// order is where a message goes in the conversation: a received one at its
// sender's time (the sender's order, whatever order the network delivered
// in), when known; otherwise at its arrival; a sent one when it was sent.
function order(m) {
  return (m.Incoming && known(m.Sent)) || new Date(m.Time);
}

// times shows a message's time: for a received one whose sending and
// arrival read differently, both.
function times(m) {
  const sent = m.Incoming && known(m.Sent);
  if (!sent) return [h("time", { dateTime: m.Time }, when(m.Time))];
  const both = `sent ${sent.toLocaleString()}, arrived ${new Date(m.Time).toLocaleString()}`;
  if (when(m.Sent) === when(m.Time)) return [h("time", { dateTime: m.Sent, title: both }, when(m.Sent))];
  return [h("time", { dateTime: m.Sent, title: both }, "sent " + when(m.Sent)),
    h("time", { dateTime: m.Time, className: "arrived", title: both }, "arrived " + when(m.Time))];
}

// groups writes a safety number in groups of five digits.
function groups(n) {
  return (n.replace(/\s+/g, "").match(/.{1,5}/g) || []).join(" ");
}

export function conversation(ctx, name) {
  const { state } = ctx;
  const title = h("h1", {}, name);
  const verified = h("span", { className: "pill" });
  const number = h("code", { className: "safety", id: "safety-number" });
  const verifyBtn = h("button", { type: "button", id: "verify" }, "I compared it: mark verified");
  verifyBtn.addEventListener("click", () => ctx.act(verifyBtn, () => api.op("contact-verify", { name }), `${name} is verified`));
  const qr = h("img", { alt: "QR code of the safety number", className: "qr", width: 192, height: 192 });
  const qrBox = h("details", { className: "qr-box" }, h("summary", {}, "Show as a QR code"), qr);
  qrBox.addEventListener("toggle", () => { if (qrBox.open) qr.src = "/api/qr?name=" + encodeURIComponent(name) + "&t=" + Date.now(); });
  const expiry = h("select", { id: "expiry", "aria-label": "Disappearing messages" }, expiries.map(([v, l]) => h("option", { value: v }, l)));
  expiry.addEventListener("change", () => ctx.act(expiry, () => api.op("contact-expire", { name, after: Number(expiry.value) }),
    expiry.value === "0" ? "Messages no longer disappear" : `Messages now disappear ${expiry.selectedOptions[0].textContent} after they arrive`));
  const budget = h("select", { id: "budget", "aria-label": "Messages fail if not acknowledged within" }, budgets.map(([v, l]) => h("option", { value: v }, l)));
  budget.addEventListener("change", () => ctx.act(budget, () => api.op("contact-budget", { name, budget: Number(budget.value) }),
    `Messages to ${name} you send from now on fail if not acknowledged within ${budget.selectedOptions[0].textContent}`));
  const newName = h("input", { id: "rename-to", maxLength: 64, value: name, "aria-label": "New name" });
  const renameBtn = h("button", { type: "submit", id: "rename" }, "Rename");
  const renameForm = h("form", { className: "row" }, newName, renameBtn);
  renameForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const n = newName.value.trim();
    if (!n || n === name) return;
    const r = await ctx.act(renameBtn, () => api.op("contact-rename", { name, newName: n }), `${name} is now called ${n} (only here: they are not told)`);
    if (r) ctx.go("#/c/" + encodeURIComponent(n));
  });
  const renameBox = h("details", { className: "rename-box" }, h("summary", {}, "Rename"), renameForm);
  const session = h("p", { className: "muted" });
  const notice = h("p", { className: "notice" });

  const list = h("ol", { className: "messages", id: "messages", "aria-live": "polite" });
  const text = h("textarea", { id: "compose", rows: 2, placeholder: `Message to ${name} (Enter sends, Shift+Enter for a new line)`, "aria-label": "Message" });
  const send = h("button", { type: "submit", className: "primary", id: "send" }, "Send");
  const file = h("input", { type: "file", id: "attach", hidden: true });
  const attach = h("button", { type: "button", title: "Send a file" }, "Attach…");
  attach.addEventListener("click", () => file.click());
  file.addEventListener("change", async () => {
    const f = file.files[0];
    file.value = "";
    if (!f) return;
    const data = new Uint8Array(await f.arrayBuffer());
    let s = "";
    for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
    await ctx.act(attach, () => api.op("send", { to: name, file: { name: f.name, data: btoa(s) } }), `${f.name} queued`);
  });
  const form = h("form", { className: "composer", id: "composer" }, text, h("div", { className: "row" }, attach, file, send));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = text.value.trim();
    if (!t) return;
    const r = await ctx.act(send, () => api.op("send", { to: name, text: t }));
    if (r) { text.value = ""; text.focus(); }
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });

  const header = h("header", { className: "conversation-head" }, title, verified,
    h("div", { className: "safety-row" }, h("span", { className: "muted" }, "Safety number "), number), session, notice,
    h("div", { className: "row" }, verifyBtn, qrBox, h("label", { className: "inline" }, "Disappearing messages ", expiry),
      h("label", { className: "inline" }, "Give up after ", budget), renameBox));
  const parts = [header, list, form];
  const el = h("section", { className: "conversation" }, ...parts);
  let lastCount = -1;
  let missing = false; // showing "No such contact" (it may come: a rename, an add elsewhere)

  function bubble(m) {
    const body = m.Kind === "file"
      ? h("a", { href: "/api/file?id=" + m.ID, download: m.Name, className: "file" }, `file: ${m.Name} (${bytes(m.Size)})`)
      : h("p", { className: "text" }, m.Text);
    const meta = times(m);
    if (!m.Incoming) {
      const retrying = m.Status === "sent" && m.Attempts > 1;
      const words = retrying ? `retrying, attempt ${m.Attempts}` : statusWords[m.Status] || m.Status;
      const progress = m.Status === "sent" && m.Fragments > 1 ? ` ${m.Acked}/${m.Fragments}` : "";
      const deadline = known(m.Deadline);
      const title = m.Reason || (deadline ? `sent again until it is acknowledged, or fails at ${deadline.toLocaleString()}` : "");
      meta.push(h("span", { className: "status " + m.Status, "data-status": m.Status, title }, words + progress));
      if (m.Status === "failed" && m.Reason) meta.push(h("span", { className: "error" }, m.Reason));
      if (m.ApprovedBy) meta.push(h("span", { className: "muted officers" }, `drafted by ${m.DraftedBy}, approved by ${m.ApprovedBy}`));
      else if (m.DraftedBy && m.DraftedBy !== ctx.state.officer) meta.push(h("span", { className: "muted officers" }, `sent by ${m.DraftedBy}`));
      meta.push(...actions(m));
    }
    if (m.Conveyed) meta.unshift(h("span", { className: "muted" }, `conveyed by ${m.Contact} from “${m.Label}”${m.Note ? " — note: " + m.Note : ""}`));
    return h("li", { className: "msg " + (m.Incoming ? "in" : "out"), "data-id": m.ID, "data-status": m.Incoming ? "received" : m.Status, "data-arrived": m.Time },
      body, h("div", { className: "meta" }, meta));
  }

  // actions are what the user can do with a sent message: try one on its
  // way again at once, or cancel it; send a failed text again.
  function actions(m) {
    const button = (label, action, op, done) => {
      const b = h("button", { type: "button", className: "small", "data-action": action }, label);
      b.addEventListener("click", () => ctx.act(b, () => api.op(op, { id: m.ID }), done));
      return b;
    };
    if (m.Status === "sent" || m.Status === "queued") {
      return [button("Retry now", "retry", "retry", "It goes again in the next send slots"),
        button("Cancel", "cancel", "cancel", "Cancelled: nothing more of it is sent")];
    }
    if (m.Status === "failed" && m.Kind === "text" && m.Text) return [button("Send again", "retry", "retry", "Queued again")];
    return [];
  }

  return {
    el,
    update() {
      const c = state.contacts.find((x) => x.Name === name);
      if (!c) {
        if (!missing) replace(el, h("h1", {}, "No such contact"), h("p", {}, `Nobody is called “${name}” among your contacts.`));
        missing = true;
        return;
      }
      if (missing) replace(el, ...parts);
      missing = false;
      verified.textContent = c.Verified ? "verified" : "not verified";
      verified.className = "pill " + (c.Verified ? "ok" : "warn");
      verifyBtn.hidden = c.Verified;
      number.textContent = groups(c.SafetyNumber);
      session.textContent = ({ none: "No session yet: your first message sets it up.", "setting up": "Setting up the session…", established: "Session established: end-to-end encrypted." }[c.Session] || c.Session) +
        (c.Envelope === "post-quantum" ? " Post-quantum: a recording of it stays closed to someone who later breaks X25519."
          : c.Envelope ? ` Not post-quantum yet (${c.Envelope}): someone who records it and later breaks X25519 learns who wrote to whom.` : "");
      notice.textContent = c.Notice || "";
      notice.hidden = !c.Notice;
      if (document.activeElement !== expiry) expiry.value = String(c.Expiry || 0);
      if (document.activeElement !== budget) {
        if (![...budget.options].some((o) => o.value === String(c.TimeBudget || 0))) budget.append(h("option", { value: String(c.TimeBudget) }, duration(c.TimeBudget)));
        budget.value = String(c.TimeBudget || 0);
      }
      if (![...expiry.options].some((o) => o.value === String(c.Expiry || 0))) {
        expiry.append(h("option", { value: String(c.Expiry) }, duration(c.Expiry)));
        expiry.value = String(c.Expiry);
      }
      const msgs = [...state.inbox.filter((m) => m.Contact === name), ...state.outbox.filter((m) => m.Contact === name && (m.Kind === "text" || m.Kind === "file"))]
        .sort((a, b) => order(a) - order(b));
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      replaceIfChanged(list, JSON.stringify(msgs), () => msgs.length ? msgs.map(bubble) : h("li", { className: "empty" }, "No messages yet."));
      if (atBottom || msgs.length !== lastCount) list.scrollTop = list.scrollHeight;
      lastCount = msgs.length;
      state.seen[name] = state.inbox.filter((m) => m.Contact === name).length;
    },
  };
}

export function addContact(ctx) {
  const name = h("input", { id: "contact-name", required: true, maxLength: 64, placeholder: "how you will call them" });
  const card = h("textarea", { id: "contact-card", rows: 8, required: true, placeholder: "-----BEGIN BACKCHANNEL CARD-----…" });
  const file = h("input", { type: "file", id: "contact-card-file", accept: ".txt,.card,text/plain" });
  file.addEventListener("change", async () => { if (file.files[0]) card.value = await file.files[0].text(); });
  const add = h("button", { type: "submit", className: "primary", id: "contact-add" }, "Add contact");
  const form = h("form", { className: "card" },
    h("h1", {}, "Add a contact"),
    h("p", {}, "Paste the card your contact gave you, or open its file. Then compare safety numbers with them, in person or on a call, before you trust it."),
    h("label", { for: "contact-name" }, "Name"), name,
    h("label", { for: "contact-card" }, "Their card"), card,
    h("label", { for: "contact-card-file" }, "…or the card's file"), file,
    add);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const n = name.value.trim();
    const r = await ctx.act(add, () => api.op("contact-add", { name: n, card: card.value }), `${n} added`);
    if (r) ctx.go("#/c/" + encodeURIComponent(n));
  });
  return { el: form, update() {} };
}

export function myCard(ctx) {
  const text = h("textarea", { id: "my-card", rows: 8, readOnly: true });
  const copy = h("button", { type: "button", id: "copy-card" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text.value);
      toast("Your card is copied");
    } catch {
      text.select();
      toast("Select the text and copy it with Ctrl+C", true);
    }
  });
  const save = h("a", { href: "/api/card", download: "backchannel-card.txt", className: "button" }, "Save as a file");
  const confirmWipe = h("input", { id: "wipe-confirm", placeholder: "type WIPE", autocomplete: "off" });
  const wipe = h("button", { type: "submit", className: "danger", id: "wipe" }, "Wipe everything now");
  const wipeForm = h("form", { className: "card danger-zone" },
    h("h2", {}, "Wipe"),
    h("p", {}, "Destroys this backchannel's keys, contacts and messages on this computer at once. Nobody, you included, can read them afterwards. Messages on the way to you are lost."),
    h("label", { for: "wipe-confirm" }, "To wipe, type WIPE"), confirmWipe, wipe);
  wipeForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (confirmWipe.value !== "WIPE") { toast("Type WIPE to confirm", true); return; }
    wipe.disabled = true;
    try {
      await api.op("wipe");
      ctx.wiped();
    } catch (err) {
      toast(err.message, true);
      wipe.disabled = false;
    }
  });
  const el = h("section", {},
    h("div", { className: "card" },
      h("h1", {}, "My card"),
      h("p", {}, "Give this card to the people who should be able to write to you: it holds your public keys and your mailbox at your provider, nothing secret. Anyone who has it can write to you."),
      text, h("div", { className: "row" }, copy, save)),
    wipeForm);
  let loaded = false;
  return {
    el,
    update() {
      if (loaded) return;
      loaded = true;
      api.op("card").then((r) => { text.value = r.card; }).catch((e) => toast(e.message, true));
    },
  };
}
