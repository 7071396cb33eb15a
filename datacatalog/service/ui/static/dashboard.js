// The dashboard's own script: no framework, no build step, nothing fetched from elsewhere.
//
// * Live states: the jobs table (and a job's page) polls /api/states for the jobs
//   shown in states agents move them out of, and updates their badges in place (a
//   job's page says when the job changed and offers to reload). Polling stops when
//   no job shown is live, and pauses while the tab is hidden.
// * Filters: choosing from a select submits the filter form.
"use strict";

(function () {
  function liveStates(element) {
    return (element.dataset.liveStates || "").split(" ").filter(Boolean);
  }

  function setBadge(badge, job) {
    if (badge.textContent === job.state) return;
    badge.textContent = job.state;
    badge.className = "badge changed state-" + job.state.toLowerCase();
    badge.title = job.description || "";
  }

  function formatDate(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }

  function poll(url, uuids, every, apply) {
    let timer = null;
    let pending = uuids.slice();
    async function tick() {
      timer = null;
      if (!pending.length) return;
      if (document.hidden) { schedule(); return; }
      const query = new URLSearchParams();
      pending.forEach((u) => query.append("uuid", u));
      try {
        const response = await fetch(url.split("?")[0] + "?" + query.toString(), {
          headers: { "Accept": "application/json" }, credentials: "same-origin",
        });
        if (response.ok) {
          const body = await response.json();
          pending = apply(body.jobs || []);
        }
      } catch (error) {
        // The service may be restarting: try again at the next tick.
      }
      schedule();
    }
    function schedule() {
      if (pending.length && timer === null) timer = window.setTimeout(tick, every);
    }
    schedule();
  }

  function liveTable(table) {
    const every = Number(table.dataset.refreshMs) || 5000;
    const live = liveStates(table);
    const rows = Array.from(table.querySelectorAll("tr[data-job]"));
    const watched = rows.filter((r) => live.includes(r.dataset.state)).map((r) => r.dataset.job);
    if (!watched.length) return;
    const note = document.querySelector("[data-live-note]");
    if (note) note.hidden = false;
    poll(table.dataset.liveUrl, watched, every, function (jobs) {
      const still = [];
      jobs.forEach(function (job) {
        const row = table.querySelector('tr[data-job="' + job.uuid + '"]');
        if (!row) return;
        row.dataset.state = job.state;
        const badge = row.querySelector("[data-badge]");
        if (badge) setBadge(badge, job);
        const modified = row.querySelector("td.modified time");
        if (modified && job.modified) {
          modified.dateTime = job.modified;
          modified.textContent = formatDate(job.modified);
        }
        if (job.live) still.push(job.uuid);
      });
      return still;
    });
  }

  function liveJob(element) {
    const every = Number(element.dataset.refreshMs) || 5000;
    const revision = Number(element.dataset.revision);
    poll(element.dataset.liveUrl, [element.dataset.liveJob], every, function (jobs) {
      const job = jobs[0];
      if (!job) return [];
      const badge = element.querySelector("[data-badge]");
      if (badge) setBadge(badge, job);
      if (job.revision !== revision) {
        const notice = element.querySelector("[data-changed]");
        if (notice) notice.hidden = false;
      }
      return job.live ? [job.uuid] : [];
    });
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.form) select.form.requestSubmit();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-live-url]").forEach(liveTable);
    document.querySelectorAll("[data-live-job]").forEach(liveJob);
    autosubmit();
  });
})();
