/*
 * Realised PnL per strategy on the dashboard: the card's table (today, 30 days, fees) and
 * the stacked daily chart. The server renders the table's first paint and sends the same
 * figures (`realised_pnl`, controlpanel/dashboard.py) in the first-paint data and in every
 * websocket `state` and `snapshot` message, which dashboard.js re-dispatches as
 * `dashboard:message` events. textContent only; no build step.
 */
(function () {
  "use strict";

  const COLORS = { WL: "#34a853", PM: "#1a73e8", manual: "#9aa0a6" };
  const $ = (id) => document.getElementById(id);
  let chart = null;

  function cell(tr, value, className) {
    const td = document.createElement("td");
    td.textContent = value == null ? "" : String(value);
    if (className) td.className = className;
    tr.appendChild(td);
  }

  function renderTable(rows) {
    const body = $("pnl-body");
    if (!body) return;
    const replacement = document.createElement("tbody");
    replacement.id = "pnl-body";
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.strategy = row.strategy;
      cell(tr, row.strategy);
      cell(tr, row.today_text, "num");
      cell(tr, row.month_text, "num");
      cell(tr, row.month_fees_text, "num");
      replacement.appendChild(tr);
    }
    body.replaceWith(replacement);
  }

  function renderChart(pnl) {
    if (!window.Chart || !$("pnl-chart")) return; // the vendored file failed to load: the table still works
    const datasets = Object.entries(pnl.series).map(([strategy, values]) => ({
      label: strategy,
      data: values.map(Number),
      backgroundColor: COLORS[strategy] || "#666",
      stack: "pnl",
    }));
    if (chart) {
      chart.data.labels = pnl.dates;
      chart.data.datasets = datasets;
      chart.update("none");
      return;
    }
    chart = new window.Chart($("pnl-chart"), {
      type: "bar",
      data: { labels: pnl.dates, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, ticks: { callback: (value) => `${value}` } } },
        plugins: { legend: { display: true, position: "bottom" } },
      },
    });
  }

  function render(pnl) {
    if (!pnl) return;
    renderTable(pnl.rows);
    renderChart(pnl);
  }

  document.addEventListener("dashboard:message", (event) => {
    const message = event.detail;
    if (message.type === "state" || message.type === "snapshot") render(message.realised_pnl);
  });

  const initial = JSON.parse($("dashboard-data").textContent);
  renderChart(initial.realised_pnl);
})();
