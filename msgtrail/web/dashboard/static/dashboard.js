// The exports on a report page: the export and history forms start a job in place
// (no reload: the new row appears at the top of the table), and each unfinished job's
// row polls its status and shows rows written, an ETA, then its size, expiry and the
// Download link. Without this script the forms still work, by reloading the page.
// Parts of a page still being counted (data-pending) are fetched again until they are
// ready and swapped in place: the rest of the page, a running export's row included,
// stays as it is.
"use strict";

const PENDING_POLL_MS = 3000;

function followPending() {
  if (!document.querySelector("[data-pending]")) return;
  setTimeout(async () => {
    try {
      const answer = await fetch(location.href, { credentials: "same-origin",
                                                  cache: "no-store" });
      if (answer.ok) {
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
        document.querySelectorAll("[data-pending]").forEach((part) => {
          const now = fresh.getElementById(part.id);
          if (now) part.replaceWith(document.adoptNode(now));
        });
      }
    } catch (e) {
      // (the next tick tries again)
    }
    followPending();
  }, PENDING_POLL_MS);
}

function describe(doc) {
  let text = (doc.rows_written || 0).toLocaleString() + " rows";
  if (doc.total_rows) text = (doc.rows_written || 0).toLocaleString() + " of " +
    doc.total_rows.toLocaleString() + " rows";
  if (doc.eta_seconds !== undefined) text += ", about " + doc.eta_seconds + " s left";
  return text;
}

function follow(row) {
  const url = row.dataset.statusUrl;
  const tick = async () => {
    let doc;
    try {
      const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok) return;
      doc = await answer.json();
    } catch (e) {
      setTimeout(tick, 2000);
      return;
    }
    row.dataset.state = doc.state;
    row.querySelector(".state").textContent = doc.state;
    const bar = row.querySelector("progress");
    if (doc.total_rows) bar.max = doc.total_rows;
    bar.value = doc.state === "ready" ? bar.max : (doc.rows_written || 0);
    row.querySelector(".progress-text").textContent = describe(doc);
    const cell = row.querySelector(".file");
    if (doc.state === "ready" && !cell.querySelector("a")) {
      const link = document.createElement("a");
      link.href = doc.url;
      link.textContent = "Download";
      link.setAttribute("download", "");
      link.setAttribute("aria-label", "Download " + row.cells[0].textContent.trim());
      cell.replaceChildren(link);
      if (doc.bytes) row.querySelector(".size").textContent =
        (doc.bytes / 1e6).toLocaleString(undefined, { maximumFractionDigits: 1,
                                                       minimumFractionDigits: 1 }) + " MB";
      if (doc.expires_at) row.querySelector(".expires").textContent =
        doc.expires_at.slice(0, 16).replace("T", " ");
    } else if (doc.state === "failed") {
      cell.textContent = doc.error || "failed";
    }
    if (doc.state === "queued" || doc.state === "running") setTimeout(tick, 500);
  };
  tick();
}

async function startInPlace(event) {
  event.preventDefault();
  const form = event.target;
  const shown = document.getElementById("export-error");
  const body = new URLSearchParams(new FormData(form, event.submitter));
  let answer;
  try {
    answer = await fetch(form.action, {
      method: "POST", body, credentials: "same-origin",
      headers: { "Accept": "application/json" } });
  } catch (e) {
    form.submit();  // the network failed: let the page itself try
    return;
  }
  const doc = await answer.json().catch(() => ({ errors: ["The export did not start."] }));
  if (!answer.ok) {
    shown.textContent = (doc.errors || ["The export did not start."]).join(" ");
    shown.hidden = false;
    return;
  }
  shown.hidden = true;
  const body_ = document.querySelector("table.jobs tbody");
  body_.querySelectorAll("tr.none").forEach((row) => row.remove());
  body_.insertAdjacentHTML("afterbegin", doc.row);
  follow(body_.firstElementChild);
}

document.addEventListener("DOMContentLoaded", () => {
  followPending();
  document.querySelectorAll("tr.job").forEach((row) => {
    if (row.dataset.state === "queued" || row.dataset.state === "running") follow(row);
  });
  document.querySelectorAll("form.export, form.history").forEach((form) => {
    form.addEventListener("submit", startInPlace);
  });
});
