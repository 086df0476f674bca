// Live progress of a bulk token job on its admin page: polls the staff-only JSON
// endpoint named in data-progress-url and updates the bar, the counters, the table
// of accounts (the same filter and page as shown) and, once done, the summary.
// A static file rather than inline script, so a strict CSP (script-src 'self') holds.
(function () {
  "use strict";

  var box = document.getElementById("job-progress");
  if (!box || !window.fetch) {
    return;
  }
  var bar = document.getElementById("job-progress-bar");
  var summary = document.getElementById("job-summary");
  var rows = document.getElementById("job-items-body");
  // The page's own ?status=&page= so the rows fetched are the rows shown.
  var url = box.getAttribute("data-progress-url") + window.location.search;
  var POLL_MS = 1000;
  var RETRY_MS = 5000;

  function show(data) {
    bar.max = Math.max(data.total, 1);
    bar.value = data.done;
    bar.textContent = data.done + " / " + data.total;
    box.querySelectorAll("[data-field]").forEach(function (element) {
      var name = element.getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(data, name)) {
        element.textContent = String(data[name]);
      }
    });
    box.setAttribute("data-state", data.state);
    // Server-rendered by Django's templates, which escape every value.
    if (rows && typeof data.items_html === "string") {
      rows.innerHTML = data.items_html;
    }
    if (data.summary_html) {
      summary.innerHTML = data.summary_html;
      summary.hidden = false;
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("progress answered " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (data.state !== "done") {
          window.setTimeout(poll, POLL_MS);
        }
      })
      .catch(function () {
        window.setTimeout(poll, RETRY_MS);
      });
  }

  if (box.getAttribute("data-state") !== "done") {
    window.setTimeout(poll, POLL_MS);
  }
})();
