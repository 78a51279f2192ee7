// Live progress of one investigation: reads the Server-Sent Events stream with fetch
// (so the session cookie is sent), adds a row per finished agent, reloads when done.
(async () => {
  const id = "__ID__";
  const rows = document.querySelector("#agents tbody");
  const phase = document.getElementById("phase");
  const state = document.getElementById("state");
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
  const tone = {succeeded: "ok", degraded: "warn", failed: "bad", timed_out: "bad", cancelled: "bad"};
  const handle = (ev) => {
    const d = ev.data || {};
    if (ev.kind === "started") { state.textContent = "running"; state.className = "pill info"; phase.textContent = `leased by ${d.owner} (attempt ${d.attempt})`; }
    if (ev.kind === "agents") phase.textContent = `agents at work: ${(d.agents || []).join(", ")}`;
    if (ev.kind === "agent_finished") {
      rows.insertAdjacentHTML("beforeend", `<tr><td><b>${esc(d.agent)}</b></td><td><span class="pill ${tone[d.status] || "info"}">${esc(d.status)}</span></td>` +
        `<td class="num">${(d.duration_ms / 1000).toFixed(2)} s<div class="bar"><span style="width:${Math.min(100, d.duration_ms / 300)}%"></span></div></td>` +
        `<td class="num">${d.observations}</td><td class="num">${d.hypotheses}</td><td class="num">$${(d.usd || 0).toFixed(4)}</td></tr>`);
    }
    if (ev.kind === "orienting") phase.textContent = "merging, disproving and ranking hypotheses…";
    if (ev.kind === "consulting") phase.textContent = `asking ${d.provider}/${d.model} (within budget)…`;
    if (ev.kind === "finished") { phase.textContent = `finished: ${d.state}`; setTimeout(() => location.reload(), 400); }
  };
  try {
    const res = await fetch(`/api/v1/investigations/${id}/events`, {credentials: "same-origin", headers: {accept: "text/event-stream"}});
    if (!res.ok) { phase.textContent = `progress unavailable (${res.status})`; return; }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data) handle(JSON.parse(data));
      }
    }
  } catch (e) { phase.textContent = `progress stream interrupted: ${e}`; }
})();
