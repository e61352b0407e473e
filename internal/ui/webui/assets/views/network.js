// The network's state as the client sees it, and the start page.
import { h, replace, when, duration, bytes } from "../dom.js";

function row(label, value, id) {
  return h("tr", {}, h("th", { scope: "row" }, label), h("td", { id }, value));
}

// anonymitySet estimates the packets a mix holds at once (Little's law):
// users online × packets per second each ÷ mixes per layer × mean delay.
function anonymitySet(n, users) {
  const rate = n.SendRate + n.LoopRate + n.DropRate;
  return Math.round(users * rate / Math.max(n.MixesPerLayer, 1) * (n.MeanDelay / 1e9));
}

// linkKind says what protects the link to the provider.
function linkKind(version) {
  if (version === 2) return "connected, post-quantum (TLS 1.3 with X25519MLKEM768)";
  if (version === 1) return "connected, classical: your provider runs the previous release";
  return "connected";
}

export function network(ctx) {
  const { state } = ctx;
  const table = h("table", { className: "facts", id: "network-facts" });
  const estimate = h("div", { className: "card", id: "anonymity" });
  const el = h("section", {}, h("h1", {}, "Network"),
    h("div", { className: "card" }, table), estimate);
  function update() {
    const s = state.stats;
    const n = state.network;
    if (!s) { replace(table, h("tr", {}, h("td", {}, "No status yet."))); return; }
    const rate = n ? n.SendRate + n.LoopRate + n.DropRate : 0;
    replace(table,
      row("Provider link", s.Connected ? linkKind(s.LinkVersion) : `offline${s.LastError ? ": " + s.LastError : ""}`, "net-link"),
      s.DocumentProblem ? row("Problem", s.DocumentProblem, "net-problem") : null,
      row("Network document", n ? `epoch ${n.Epoch}, valid until ${when(n.ValidUntil)}` : "none yet", "net-epoch"),
      s.NextEpoch ? row("Next document", `epoch ${s.NextEpoch} held`) : null,
      n ? row("Route", `${n.Layers} mix layers (at least ${n.MixesPerLayer} mixes each), mean delay ${duration(n.MeanDelay)} per hop`) : null,
      n ? row("Cover traffic", `${rate.toFixed(1)} packets/s (${n.SendRate} send slots, ${n.LoopRate} loops, ${n.DropRate} drops), about ${bytes(Math.round(rate * n.PacketSize))}/s each way`, "net-cover") : null,
      row("Loop packets", `${s.LoopsSent} sent, ${s.LoopsReturned} returned, ${s.LoopsLost} lost`, "net-loops"),
      row("Packets", `${s.SendSlots} send slots used, ${s.FragmentsSent} message fragments, ${s.Retransmissions} retransmissions, ${s.Fetched} fetched`),
      row("Acknowledgements", `${s.AckPacketsSent} ack channel packets sent (one send slot in four, to contacts heard from lately), ${s.AckPacketsReceived} received; ${s.AcksReceived} of your fragments acknowledged`, "net-acks"),
      row("Messages", `${s.MessagesReceived} received, ${s.Duplicates} duplicates dropped, ${s.Undecryptable} unreadable dropped`));
    if (!n) { replace(estimate); return; }
    replace(estimate,
      h("h2", {}, "How many packets yours hide among"),
      h("p", {}, `Every mix holds each packet for a random time (mean ${duration(n.MeanDelay)}), so at any moment it holds, on average, `,
        `the packets that reached it during one mean delay: users online × ${rate.toFixed(1)} packets/s ÷ ${n.MixesPerLayer} mixes × ${duration(n.MeanDelay)}. `,
        "Your client cannot count the users online; with"),
      h("ul", {}, [100, 1000, 10000].map((u) => h("li", {}, `${u.toLocaleString()} users online: about `, h("strong", {}, anonymitySet(n, u).toLocaleString()), " packets per mix"))),
      h("p", { className: "muted" }, "Mixes' own loop packets add to this. Your provider's operator knows how many users are online."));
  }
  return { el, update, tick: update };
}

export function home(ctx) {
  const { state } = ctx;
  const el = h("section", { className: "home" });
  return {
    el,
    update() {
      const todo = [];
      const intros = state.introductions.filter((i) => i.State === "pending").length;
      const desk = state.desk.filter((d) => d.State === "pending").length;
      const checks = state.checks.filter((c) => !c.Asked && c.Result === "pending" && c.Answer === "undecided").length;
      if (intros) todo.push(h("li", {}, h("a", { href: "#/introductions" }, `${intros} introduction${intros > 1 ? "s" : ""} to answer`)));
      if (desk) todo.push(h("li", {}, h("a", { href: "#/desk" }, `${desk} message${desk > 1 ? "s" : ""} to convey`)));
      if (checks) todo.push(h("li", {}, h("a", { href: "#/checks" }, `${checks} question${checks > 1 ? "s" : ""} to answer`)));
      replace(el, h("h1", {}, "backchannel"),
        state.contacts.length
          ? h("p", {}, "Choose a contact to read and write messages.")
          : h("p", {}, "No contacts yet: ", h("a", { href: "#/me" }, "give your card"), " to someone and ", h("a", { href: "#/add" }, "add theirs"), "."),
        todo.length ? h("div", { className: "card" }, h("h2", {}, "Waiting for you"), h("ul", {}, todo)) : null);
    },
  };
}
