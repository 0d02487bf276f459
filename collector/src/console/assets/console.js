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
// The change form's times are typed in the browser's time zone; the server
// gets them as UTC in hidden fields (without JavaScript they are UTC).
function utcOnSubmit(form) {
  form.addEventListener("submit", () => {
    for (const name of ["start", "end"]) {
      const input = form.querySelector("input[name=" + name + "]");
      const d = input && new Date(input.value);
      if (d && !isNaN(d)) {
        const hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = name + "_utc"; hidden.value = d.toISOString();
        form.appendChild(hidden);
      }
    }
  });
  for (const l of form.querySelectorAll(".tzname")) {
    l.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  }
}
document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  for (const f of document.querySelectorAll("form.change")) { utcOnSubmit(f); }
  for (const el of document.querySelectorAll("[data-refresh]")) {
    setInterval(() => refresh(el), 5000);
  }
});
