// What an intermediary and the parties do: introductions, conveyed
// messages with receipts, and mutual interest checks.
import * as api from "../api.js";
import { h, replaceIfChanged, when, fillSelect } from "../dom.js";

const names = (state) => state.contacts.map((c) => c.Name);

function field(label, input) {
  return h("label", { className: "field" }, h("span", {}, label), input);
}

export function introductions(ctx) {
  const { state } = ctx;
  const incoming = h("ul", { className: "list items", id: "intro-incoming" });
  const made = h("ul", { className: "list items", id: "intro-made" });
  const a = h("select", { id: "intro-a", required: true });
  const b = h("select", { id: "intro-b", required: true });
  const labelA = h("input", { id: "intro-label-a", required: true, placeholder: "e.g. a party in country Y" });
  const labelB = h("input", { id: "intro-label-b", required: true, placeholder: "e.g. a party in country X" });
  const note = h("input", { id: "intro-note", placeholder: "optional, both see it" });
  const go = h("button", { type: "submit", className: "primary", id: "introduce" }, "Introduce them");
  const form = h("form", { className: "card" },
    h("h2", {}, "Introduce two of your contacts"),
    h("p", { className: "muted" }, "Each gets the other's card under the label you choose, and becomes their contact only if both accept. Neither learns whether the other declined or did not answer."),
    h("div", { className: "grid" }, field("First contact", a), field("How the second is shown to them", labelA),
      field("Second contact", b), field("How the first is shown to them", labelB)),
    field("Note", note), go);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (a.value === b.value) { ctx.act(null, async () => { throw new Error("Choose two different contacts"); }); return; }
    const r = await ctx.act(go, () => api.op("introduce", { a: a.value, b: b.value, label_for_a: labelA.value, label_for_b: labelB.value, note: note.value }), "Introduction sent to both");
    if (r) form.reset();
  });
  const el = h("section", {}, h("h1", {}, "Introductions"),
    h("div", { className: "card" }, h("h2", {}, "Introductions to you"), incoming),
    form,
    h("div", { className: "card" }, h("h2", {}, "Introductions you made"), made));
  return {
    el,
    update() {
      fillSelect(a, names(state), "choose…");
      fillSelect(b, names(state), "choose…");
      const mine = state.introductions.filter((i) => !i.Intermediary);
      replaceIfChanged(incoming, JSON.stringify(mine), () => mine.length ? mine.map((i) => {
        const accept = h("button", { type: "button", className: "primary", "data-action": "accept" }, "Accept");
        const decline = h("button", { type: "button", "data-action": "decline" }, "Decline");
        accept.onclick = () => ctx.act(accept, () => api.op("intro-answer", { id: i.ID, accept: true }), `You accepted “${i.Label}”`);
        decline.onclick = () => ctx.act(decline, () => api.op("intro-answer", { id: i.ID, accept: false }), "Declined; they will not learn it");
        return h("li", { "data-id": i.ID, "data-state": i.State, "data-label": i.Label },
          h("strong", {}, i.From), ` introduces you to “${i.Label}”`,
          i.Note ? h("p", { className: "note" }, i.Note) : null,
          h("div", { className: "meta" }, h("time", {}, when(i.Created)), " · ", h("span", { className: "state" }, i.State)),
          i.State === "pending" ? h("div", { className: "row" }, accept, decline) : null);
      }) : h("li", { className: "empty" }, "Nobody has introduced you to anyone."));
      const theirs = state.introductions.filter((i) => i.Intermediary);
      replaceIfChanged(made, JSON.stringify(theirs), () => theirs.length ? theirs.map((i) => h("li", { "data-id": i.ID, "data-state": i.State },
        `${i.Sides[0]} and ${i.Sides[1]}`, h("div", { className: "meta" }, h("time", {}, when(i.Created)), " · ", i.State)))
        : h("li", { className: "empty" }, "None yet."));
    },
  };
}

const receiptWords = { none: "no receipt", deniable: "a deniable receipt", signed: "a signed receipt" };

export function desk(ctx) {
  const { state } = ctx;
  const entries = h("ul", { className: "list items", id: "desk-entries" });
  const sent = h("ul", { className: "list items", id: "conveyances" });
  const via = h("select", { id: "convey-via", required: true });
  const to = h("input", { id: "convey-to", required: true, placeholder: "who it is for, as the intermediary knows them" });
  const text = h("textarea", { id: "convey-text", rows: 3, required: true });
  const receipt = h("select", { id: "convey-receipt" }, ["deniable", "signed", "none"].map((r) => h("option", { value: r }, receiptWords[r])));
  const go = h("button", { type: "submit", className: "primary", id: "convey" }, "Give it to the intermediary");
  const form = h("form", { className: "card" },
    h("h2", {}, "Send a message through an intermediary"),
    h("p", { className: "muted" }, "The intermediary reads it, may add a note, and passes it on or refuses. A signed receipt proves to anyone that the intermediary delivered it; a deniable one convinces only you."),
    h("div", { className: "grid" }, field("Intermediary", via), field("For", to)),
    field("Message", text), field("Receipt", receipt), go);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await ctx.act(go, () => api.op("convey", { via: via.value, to: to.value, text: text.value, receipt: receipt.value }), "Given to the intermediary");
    if (r) form.reset();
  });
  const el = h("section", {}, h("h1", {}, "Conveyed messages"),
    h("div", { className: "card" }, h("h2", {}, "Given to you to pass on"), entries),
    form,
    h("div", { className: "card" }, h("h2", {}, "You sent through intermediaries"), sent));

  function entry(d) {
    const li = h("li", { "data-id": d.ID, "data-state": d.State },
      h("div", {}, h("strong", {}, d.From), ` asks you to pass this to “${d.To || d.ReplyTo}”:`),
      h("blockquote", {}, d.Text),
      h("div", { className: "meta" }, h("time", {}, when(d.Received)), " · ", h("span", { className: "state" }, d.State),
        d.PassedTo ? ` to ${d.PassedTo}` : "", d.Note ? ` · your note: ${d.Note}` : "",
        h("div", {}, d.Receipt === "none" ? "No receipt asked." : `Receipt asked: ${d.Receipt}. Your client issues it when the recipient's client confirms delivery.`)));
    if (d.State !== "pending") return li;
    const target = h("select", { "aria-label": "Pass on to" });
    fillSelect(target, names(state), d.ReplyTo ? `back to ${d.ReplyTo}` : "choose…");
    const label = h("input", { placeholder: "how the sender is shown", "aria-label": "How the sender is shown" });
    const note = h("input", { placeholder: "your note (optional)", "aria-label": "Your note" });
    const pass = h("button", { type: "button", className: "primary" }, "Pass on");
    const refuse = h("button", { type: "button" }, "Refuse");
    pass.onclick = () => ctx.act(pass, () => api.op("desk-pass", { id: d.ID, to: target.value, as: label.value, note: note.value }),
      "Passed on; the receipt goes back when it is delivered");
    refuse.onclick = () => ctx.act(refuse, () => api.op("desk-refuse", { id: d.ID, note: note.value }), "Refused; the sender is told");
    li.append(h("div", { className: "row" }, target, label, note, pass, refuse));
    return li;
  }

  return {
    el,
    update() {
      fillSelect(via, names(state), "choose…");
      replaceIfChanged(entries, JSON.stringify([state.desk, state.desk.some((d) => d.State === "pending") ? names(state) : []]),
        () => state.desk.length ? state.desk.map(entry) : h("li", { className: "empty" }, "Nothing to convey."));
      replaceIfChanged(sent, JSON.stringify(state.conveyances), () => state.conveyances.length ? state.conveyances.map((c) => h("li", { "data-id": c.ID, "data-state": c.State },
        h("div", {}, `Through ${c.Via} to “${c.To}”`), h("blockquote", {}, c.Text),
        h("div", { className: "meta" }, h("time", {}, when(c.Sent)), " · ", c.State, c.Note ? ` · note: ${c.Note}` : "",
          " · ", c.Receipt ? h("a", { href: "/api/proof?id=" + c.ID, download: `receipt-${c.ID}.json` }, "save the receipt") : (c.ReceiptKind === "none" ? "no receipt asked" : `waiting for the receipt: ${c.ReceiptKind}`))))
        : h("li", { className: "empty" }, "None yet."));
    },
  };
}

export function checks(ctx) {
  const { state } = ctx;
  const list = h("ul", { className: "list items", id: "check-list" });
  const who = h("select", { id: "check-contact", required: true });
  const question = h("input", { id: "check-question", required: true, placeholder: "e.g. Would you meet in Geneva next month?" });
  const answer = h("select", { id: "check-answer" }, h("option", { value: "yes" }, "yes"), h("option", { value: "no" }, "no"));
  const within = h("input", { id: "check-within", type: "number", min: "1", step: "1", value: "1", required: true, "aria-label": "Answer within" });
  const unit = h("select", { id: "check-within-unit", "aria-label": "Unit" },
    [["1", "seconds"], ["60", "minutes"], ["3600", "hours"], ["86400", "days"]].map(([v, l]) => h("option", { value: v }, l)));
  unit.value = "86400";
  const go = h("button", { type: "submit", className: "primary", id: "check-ask" }, "Ask");
  const form = h("form", { className: "card" },
    h("h2", {}, "Ask a mutual interest question"),
    h("p", { className: "muted" }, "Both of you answer in secret, and you both learn only whether both said yes. But whoever answers yes learns the other's answer: \"no match\" then means the other said no (or did not answer). Whoever answers no learns nothing. Neither of you can prove afterwards what the other answered. "
      + "Both of you see the result when the time to answer is up, whenever the answer came, so that its timing tells nothing."),
    h("div", { className: "grid" }, field("Contact", who), h("div", { className: "field" }, h("span", {}, "Answer within"), h("div", { className: "row tight" }, within, unit))),
    field("Question", question), field("Your own answer", answer), go);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await ctx.act(go, () => api.op("check-ask", { with: who.value, question: question.value, answer: answer.value, within: Number(within.value) * Number(unit.value) * 1e9 }), "Asked");
    if (r) {
      form.reset();
      within.value = "1";
      unit.value = "86400";
    }
  });
  const el = h("section", {}, h("h1", {}, "Mutual interest checks"), form,
    h("div", { className: "card" }, h("h2", {}, "Questions"), list));
  return {
    el,
    update() {
      fillSelect(who, names(state), "choose…");
      replaceIfChanged(list, JSON.stringify(state.checks), () => state.checks.length ? state.checks.map((c) => {
        const li = h("li", { "data-id": c.ID, "data-result": c.Result },
          h("div", {}, c.Asked ? `You asked ${c.Contact}: ` : `${c.Contact} asks you: `, h("strong", {}, c.Question)),
          h("div", { className: "meta" }, c.Answer !== "undecided" ? `your answer: ${c.Answer} · ` : "",
            h("span", { className: "result " + (c.Result.startsWith("match") ? "ok" : "") }, c.Result),
            c.Reason ? ` · ${c.Reason}` : "", c.Result === "pending" ? ` · until ${when(c.Deadline)}` : ""));
        if (!c.Asked && c.Answer === "undecided" && c.Result === "pending") {
          const yes = h("button", { type: "button", className: "primary", "data-answer": "yes" }, "Yes");
          const no = h("button", { type: "button", "data-answer": "no" }, "No");
          yes.onclick = () => ctx.act(yes, () => api.op("check-answer", { id: c.ID, answer: "yes" }), "Answered");
          no.onclick = () => ctx.act(no, () => api.op("check-answer", { id: c.ID, answer: "no" }), "Answered");
          li.append(h("div", { className: "row" }, h("span", { className: "muted" }, "Your answer, kept secret: "), yes, no));
        }
        return li;
      }) : h("li", { className: "empty" }, "No questions yet."));
    },
  };
}
