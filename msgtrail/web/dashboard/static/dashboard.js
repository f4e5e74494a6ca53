// Follows the exports on a report page: each unfinished job's row polls its status
// and shows rows written, an ETA, then the Download link. No other script runs here.
"use strict";

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
      cell.replaceChildren(link);
    } else if (doc.state === "failed") {
      cell.textContent = doc.error || "failed";
    }
    if (doc.state === "queued" || doc.state === "running") setTimeout(tick, 500);
  };
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("tr.job").forEach((row) => {
    if (row.dataset.state === "queued" || row.dataset.state === "running") follow(row);
  });
});
