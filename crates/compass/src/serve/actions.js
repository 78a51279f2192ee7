// Action buttons: POST approve / run / rollback, then reload; show the server's error.
document.querySelectorAll(".action button[data-op]").forEach((button) => {
  button.addEventListener("click", async () => {
    const card = button.closest(".action");
    const out = card.querySelector(".outcome");
    const op = button.dataset.op;
    if (op !== "approve" && !confirm(`${op} ${card.dataset.id}?`)) return;
    card.querySelectorAll("button").forEach((b) => (b.disabled = true));
    out.textContent = `${op}…`;
    try {
      const res = await fetch(`/api/v1/actions/${encodeURIComponent(card.dataset.id)}/${op}`, {
        method: "POST", credentials: "same-origin", headers: {"x-compass-ui": "1"},
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
      location.reload();
    } catch (e) {
      out.textContent = e.message;
      out.className = "outcome bad";
      card.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  });
});
if (document.querySelector(".action[data-status=running]")) setTimeout(() => location.reload(), 2000);
