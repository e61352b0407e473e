// What several officers of one identity do: approve or reject each
// other's drafts under dual control, and read the audit trail.
import * as api from "../api.js";
import { h, replaceIfChanged, when } from "../dom.js";

// fields shows what a draft would do, field by field, as the command line
// does: exactly what leaves if it is approved.
function fields(request) {
  if (!request) return null;
  return h("dl", { className: "request" }, Object.entries(request)
    .filter(([, v]) => v !== "" && v !== null && v !== undefined)
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]));
}

export function drafts(ctx) {
  const { state } = ctx;
  const list = h("ul", { className: "list items", id: "draft-list" });
  const el = h("section", {}, h("h1", {}, "Drafts"),
    h("p", { className: "muted" }, "Under dual control, what an officer asks to send waits here until a different officer with the releaser role approves it, exactly as shown. A rejected draft never leaves."),
    h("div", { className: "card" }, list));

  function item(d) {
    const li = h("li", { "data-id": d.id, "data-state": d.state },
      h("div", {}, h("strong", {}, d.about)),
      fields(d.request),
      h("div", { className: "meta" }, `drafted by ${d.drafted_by} `, h("time", {}, when(d.drafted)), " · ",
        h("span", { className: "state" }, d.state),
        d.decided_by ? ` by ${d.decided_by}` : "", d.note ? ` · ${d.note}` : "",
        d.state === "pending" ? ` · needs the ${d.needs} role · content ${d.mac}` : ""));
    if (d.state !== "pending") return li;
    const reject = h("button", { type: "button", "data-action": "reject" }, d.drafted_by === state.officer ? "Withdraw" : "Reject");
    reject.onclick = () => ctx.act(reject, () => api.op("reject", { id: d.id }), "Rejected: it never leaves");
    if (d.drafted_by === state.officer) {
      li.append(h("div", { className: "row" }, h("span", { className: "muted own" }, "Your draft: another officer approves it."), reject));
      if (d.op === "send" && d.request && typeof d.request.text === "string" && d.request.text !== "") {
        const text = h("textarea", { rows: 3, "aria-label": "New text", className: "draft-text" });
        text.value = d.request.text;
        const save = h("button", { type: "button", "data-action": "edit" }, "Save the new text");
        save.onclick = () => ctx.act(save, () => api.op("draft-edit", { id: d.id, text: text.value }),
          "Edited: it needs an approval of the new text");
        li.append(h("div", { className: "row" }, text, save));
      }
      return li;
    }
    const approve = h("button", { type: "button", className: "primary", "data-action": "approve" }, "Approve and send");
    approve.onclick = () => ctx.act(approve, () => api.op("approve", { id: d.id, mac: d.mac }), "Approved and done");
    li.append(h("div", { className: "row" }, approve, reject));
    return li;
  }

  return {
    el,
    update() {
      replaceIfChanged(list, JSON.stringify([state.drafts, state.officer]), () => state.drafts.length
        ? state.drafts.map(item) : h("li", { className: "empty" }, "No drafts."));
    },
  };
}

export function audit(ctx) {
  const list = h("ol", { className: "list items", id: "audit-list" });
  const result = h("p", { id: "audit-result", role: "status" });
  const verify = h("button", { type: "button", id: "audit-verify" }, "Verify the trail");
  verify.onclick = async () => {
    const r = await ctx.act(verify, () => api.op("audit-verify"));
    if (r) result.textContent = `The trail holds: ${r.checked} entries checked, none removed, altered, reordered or cut off.`;
  };
  const el = h("section", {}, h("h1", {}, "Audit trail"),
    h("p", { className: "muted" }, "Who did what, on what, when: never a message's text. It is your organisation's record of its own officers' actions."),
    h("div", { className: "row" }, verify), result,
    h("div", { className: "card" }, list));
  let loaded = false;
  async function load() {
    const r = await ctx.act(null, () => api.op("audit-show"));
    if (!r) return;
    const entries = (r.entries || []).slice().reverse();
    replaceIfChanged(list, JSON.stringify(entries), () => entries.length ? entries.map((e) => h("li", { "data-seq": e.seq },
      h("time", {}, when(e.time)), " · ", h("strong", {}, e.officer), " · ", e.action, e.object ? ` · ${e.object}` : ""))
      : h("li", { className: "empty" }, "Nothing yet."));
  }
  return {
    el,
    update() {
      if (!loaded) {
        loaded = true;
        load();
      }
    },
  };
}
