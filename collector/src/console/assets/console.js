// vedette console: local times, and the live part of a page refreshed in
// place (forms outside it keep what was typed). Works without it.
"use strict";
function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.textContent = d.toLocaleString(); t.title = t.getAttribute("datetime"); }
  }
  for (const z of root.querySelectorAll(".tz")) {
    z.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  }
}
function refresh(el) {
  const url = el.getAttribute("data-refresh");
  fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
    .then(r => (r.ok ? r.text() : Promise.reject(r.status)))
    .then(html => { el.innerHTML = html; localTimes(el); el.setAttribute("data-refreshed", String(Date.now())); })
    .catch(() => {});
}
document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  for (const el of document.querySelectorAll("[data-refresh]")) {
    setInterval(() => refresh(el), 5000);
  }
});
