// A batch audit's page follows the job: it polls the job's progress and, when the job ends, loads
// the page again to show what changed (the diff is drawn by the server). Its words come from the
// page (data- attributes of #audit-live), in the reader's language.
(function () {
  "use strict";
  var live = document.getElementById("audit-live");
  if (!live || live.dataset.status === "done") { return; }
  var url = live.dataset.progressUrl;
  var bar = document.getElementById("progress");
  var hint = document.getElementById("live-hint");
  var misses = 0;
  var words = JSON.parse(live.dataset.statusWords || "{}");
  var locale = live.dataset.numberLocale || "en";

  function show(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value.toLocaleString(locale); }
  }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        var json = (response.headers.get("content-type") || "").indexOf("application/json") === 0;
        if (!response.ok || !json) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (job) {
        misses = 0;
        if (job.status === "done") { window.location.reload(); return; }
        if (bar) { bar.max = job.total; bar.value = job.done + job.failed; }
        show("finished", job.done + job.failed);
        show("failed", job.failed);
        show("pending", job.pending);
        var badge = document.querySelector("#job-status .badge");
        if (badge && badge.dataset.status !== job.status) {
          badge.dataset.status = job.status;
          badge.textContent = words[job.status] || job.status;
          badge.className = "badge job-" + job.status;
        }
        window.setTimeout(poll, 1500);
      })
      .catch(function () {
        misses += 1;
        if (misses >= 5) {
          if (hint) { hint.textContent = live.dataset.lost; }
          return;
        }
        window.setTimeout(poll, 3000);
      });
  }
  window.setTimeout(poll, 1000);
})();
