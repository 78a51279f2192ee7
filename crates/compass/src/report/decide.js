// Decision buttons: POST the verdict, update the bar in place, show the server's error.
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c]));
document.querySelectorAll(".decide button").forEach((button) => {
  button.addEventListener("click", async () => {
    const bar = button.closest(".decide");
    const verdict = button.classList.contains("confirm") ? "confirmed" : "rejected";
    const note = bar.querySelector("input").value;
    const text = bar.querySelector(".verdict");
    bar.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      const res = await fetch(DECISIONS, {
        method: "POST", credentials: "same-origin",
        headers: {"content-type": "application/json", "x-compass-ui": "1"},
        body: JSON.stringify({hypothesis_id: button.dataset.hypothesis, verdict, note}),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
      bar.dataset.verdict = verdict;
      text.innerHTML = `<span class="${verdict === "confirmed" ? "ok" : "bad"}">${verdict} by ${esc(body.actor)}${body.note ? ": " + esc(body.note) : ""}</span>`;
    } catch (e) {
      text.innerHTML = `<span class="bad">${esc(e.message)}</span>`;
    } finally {
      bar.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  });
});
