// relayflow console: the live countdown to each approval's deadline (htmx does the rest).
"use strict";
(function () {
  function left(ms) {
    if (ms <= 0) return "deadline passed";
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    const m = Math.floor(s % 3600 / 60), r = s % 60;
    const parts = d ? [d + "d", h + "h", m + "m"] : h ? [h + "h", m + "m", r + "s"] : m ? [m + "m", r + "s"] : [r + "s"];
    return parts.join(" ") + " left";
  }
  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      const at = Date.parse(el.dataset.deadline);
      if (isNaN(at)) return;
      const ms = at - Date.now();
      el.textContent = left(ms);
      el.title = el.dataset.deadline;
      el.classList.toggle("overdue", ms <= 0);
    });
  }
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
})();
