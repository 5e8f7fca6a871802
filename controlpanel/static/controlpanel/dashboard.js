/*
 * The live dashboard. The server renders the first paint; this script keeps it current
 * from the websocket (/ws/dashboard/, controlpanel/consumers.py):
 *   state        on (re)connect: everything, as the first paint had it
 *   snapshot     every ~2 s: account, daily PnL, IM %, lock, health, engine figures,
 *                the newest equity sample, other strategies' new journal rows
 *   decisions    the engine's journal rows, as it writes them
 *   liquidations the engine's recent liquidations on configured coins
 * Plain DOM, textContent only (reasons and symbols are data, never markup). No build step.
 */
(function () {
  "use strict";

  const MAX_ROWS = 50;
  const initial = JSON.parse(document.getElementById("dashboard-data").textContent);
  const pushIntervalS = JSON.parse(document.getElementById("push-interval").textContent);
  const $ = (id) => document.getElementById(id);

  // -- formatting (the server sends text for its own figures; the engine's pushes are raw) --

  const hhmmss = (ms) => (ms == null ? "" : new Date(ms).toISOString().slice(11, 19));
  const hhmm = (ms) => new Date(ms).toISOString().slice(11, 16);
  const dayStartMs = (ms) => ms - (ms % 86400000);
  function money(value) {
    if (value == null || value === "") return "";
    const number = Number(value);
    if (!Number.isFinite(number)) return String(value);
    return number.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function setText(id, value) {
    const element = $(id);
    if (element) element.textContent = value == null ? "" : String(value);
  }
  function setHidden(id, hidden) {
    const element = $(id);
    if (element) element.hidden = hidden;
  }

  // -- tables --------------------------------------------------------------------------

  function cell(tr, value, className) {
    const td = document.createElement("td");
    td.textContent = value == null ? "" : String(value);
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  }

  function fillBody(id, rows, renderRow, emptyText, columns, isFresh) {
    const body = $(id);
    const replacement = document.createElement("tbody");
    replacement.id = id;
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      cell(tr, emptyText).colSpan = columns;
      replacement.appendChild(tr);
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      renderRow(tr, row);
      if (isFresh && isFresh(row)) tr.className = "fresh";
      replacement.appendChild(tr);
    }
    body.replaceWith(replacement);
  }

  function renderPositions(positions) {
    setText("positions-count", `(${positions.length})`);
    fillBody("positions-body", positions, (tr, p) => {
      const owner = document.createElement("span");
      owner.className = `owner owner-${p.owner}`;
      owner.textContent = p.owner;
      cell(tr, p.symbol);
      cell(tr, "").appendChild(owner);
      cell(tr, p.side, p.side);
      cell(tr, p.size, "num");
      cell(tr, p.entry_price, "num");
      cell(tr, p.mark_price, "num");
      cell(tr, p.unrealised_pnl_text, "num pnl");
      cell(tr, p.take_profit || "–", "num");
      cell(tr, p.stop_loss || "–", "num");
      cell(tr, p.liq_price, "num");
    }, "No open position.", 10);
  }

  function renderOrders(orders) {
    setText("orders-count", `(${orders.length})`);
    fillBody("orders-body", orders, (tr, o) => {
      cell(tr, o.created_text);
      cell(tr, o.symbol);
      cell(tr, o.owner);
      cell(tr, o.side);
      cell(tr, o.stop_order_type ? `${o.order_type} ${o.stop_order_type}` : o.order_type);
      cell(tr, o.price, "num");
      cell(tr, o.trigger_price, "num");
      cell(tr, o.qty_text, "num");
      cell(tr, o.leaves_qty, "num");
      cell(tr, o.reduce_only ? "yes" : "no");
      cell(tr, o.status);
      cell(tr, o.order_link_id, "mono");
    }, "No open order.", 12);
  }

  // Decisions and liquidations arrive from two sources (the journal on connect, the
  // engine's pushes); a row both carried is shown once. Newest first, at most MAX_ROWS.
  const decisionKey = (d) =>
    [d.strategy, d.at_ms, d.symbol, d.action, d.outcome, d.reason_code, d.order_link_id].join("|");
  const liquidationKey = (l) => [l.at_ms, l.event_ms, l.symbol, l.side, l.price, l.qty].join("|");

  class RecentRows {
    constructor(key, bodyId, renderRow, emptyText, columns) {
      Object.assign(this, { key, bodyId, renderRow, emptyText, columns });
      this.rows = [];
      this.fresh = new Set();
    }
    replace(rows) {
      this.rows = rows.slice(0, MAX_ROWS);
      this.fresh = new Set();
      this.render();
    }
    add(rows) {
      const known = new Set(this.rows.map(this.key));
      const added = rows.filter((row) => !known.has(this.key(row)));
      if (added.length === 0) return;
      this.fresh = new Set(added.map(this.key));
      this.rows = added.concat(this.rows).sort((a, b) => (b.at_ms || 0) - (a.at_ms || 0)).slice(0, MAX_ROWS);
      this.render();
    }
    render() {
      fillBody(this.bodyId, this.rows, this.renderRow, this.emptyText, this.columns,
        (row) => this.fresh.has(this.key(row)));
    }
  }

  const decisions = new RecentRows(decisionKey, "decisions-body", (tr, d) => {
    cell(tr, d.time_text || hhmmss(d.at_ms));
    cell(tr, d.strategy);
    cell(tr, d.symbol);
    cell(tr, d.action);
    cell(tr, d.outcome, `outcome-${d.outcome}`);
    cell(tr, d.reason_code);
    cell(tr, d.latency_text || latencyText(d), "latency");
  }, "No decisions yet.", 7);

  const liquidations = new RecentRows(liquidationKey, "liquidations-body", (tr, l) => {
    cell(tr, l.time_text || hhmmss(l.at_ms));
    cell(tr, l.symbol);
    cell(tr, l.side);
    cell(tr, l.price, "num");
    cell(tr, l.qty, "num");
    cell(tr, l.notional_text || money(l.notional), "num");
    cell(tr, l.bybit_price, "num");
    cell(tr, l.vwap, "num");
    cell(tr, l.result);
  }, "No liquidation on a configured coin seen yet.", 9);

  // -- the live figures ----------------------------------------------------------------

  function renderAccount(account) {
    setText("equity", account.equity_text || "–");
    setText("wallet-balance", account.wallet_balance_text);
    setText("available-balance", account.available_balance_text);
    setText("unrealised-pnl", account.unrealised_pnl_text);
    const age = $("account-age");
    age.textContent = "";
    if (account.available) {
      age.append(`as of ${account.at_text} UTC`);
      if (account.stale) {
        const warning = document.createElement("strong");
        warning.className = "down";
        warning.textContent = ` (stale: ${account.age_s} s old, is the worker running?)`;
        age.append(warning);
      }
    } else {
      const warning = document.createElement("strong");
      warning.className = "down";
      warning.textContent = "no account snapshot yet (the worker publishes one every 2 s)";
      age.append(warning);
    }
    setText("account-error", account.error);
    setHidden("account-error", !account.error);
    renderPositions(account.positions || []);
    renderOrders(account.open_orders || []);
  }

  function renderDaily(daily) {
    setText("daily-date", daily.date);
    const meter = $("daily-meter");
    meter.min = -Number(daily.stop_pct);
    meter.max = Number(daily.target_pct);
    meter.optimum = Number(daily.target_pct);
    if (!daily.available) {
      setText("daily-pnl", "–");
      meter.value = 0;
      setText("daily-details",
        `No record for today yet · target +${daily.target_pct} % · stop −${daily.stop_pct} %`);
      return;
    }
    setText("daily-pnl", `${daily.pnl_pct_text} %`);
    meter.value = Number(daily.pnl_pct);
    setText("daily-details",
      `${daily.pnl_usdt_text} USDT on ${daily.baseline_text}${daily.moved_text || ""} · ` +
      `target +${daily.target_pct} % (${daily.target_equity_text}, ${daily.to_target_pct_text} pts away) · ` +
      `stop −${daily.stop_pct} % (${daily.stop_equity_text}, ${daily.to_stop_pct_text} pts away) · ${daily.outcome}`);
  }

  function renderIm(im) {
    const figure = $("im-pct");
    figure.textContent = im.pct_text ? `${im.pct_text} %` : "–";
    figure.className = `big im-${im.level}`;
    const meter = $("im-meter");
    meter.max = Number(im.reduce_pct);
    meter.low = meter.high = Number(im.warn_pct);
    meter.value = im.pct == null ? 0 : Math.min(Number(im.pct), Number(im.reduce_pct));
    setText("im-details", "");
    $("im-details").append(`warn at ${im.warn_pct} % · reduce at ${im.reduce_pct} % · `);
    const level = document.createElement("span");
    level.id = "im-level";
    level.textContent = im.level;
    $("im-details").append(level);
  }

  function renderLock(lock) {
    const state = $("trading-state");
    state.textContent = lock.may_trade ? "allowed" : "stopped";
    state.className = lock.may_trade ? "alive" : "down";
    const details = [];
    if (lock.panic_locked) details.push(`(panic lock since ${lock.panic_since_text} UTC: ${lock.panic_reason})`);
    if (lock.halted) details.push(`(halted by ${lock.halted_by})`);
    if (lock.disabled) details.push(`(disabled until ${lock.disabled_until_text} UTC: ${lock.disabled_reason})`);
    setText("lock-details", details.join(" "));

    const panicState = $("panic-state");
    panicState.textContent = "";
    if (lock.panic_locked) {
      const strong = document.createElement("strong");
      strong.className = "down";
      strong.textContent = "LOCKED";
      panicState.append(strong, ` since ${lock.panic_since_text} UTC: ${lock.panic_reason}`);
    } else {
      panicState.textContent = "Not locked.";
    }
    showResetForm(lock.panic_locked);
  }

  // The reset button exists only while the lock is on, as in the first paint.
  function showResetForm(locked) {
    const panicForm = $("panic-form");
    let form = $("panic-reset-form");
    if (!panicForm) return;
    if (locked && !form) {
      form = document.createElement("form");
      form.method = "post";
      form.action = document.body.dataset.resetUrl;
      form.id = "panic-reset-form";
      form.appendChild(panicForm.querySelector("input[name=csrfmiddlewaretoken]").cloneNode());
      const button = document.createElement("button");
      button.type = "submit";
      button.id = "panic-reset-button";
      button.textContent = "Reset the panic lock";
      const note = document.createElement("small");
      note.textContent = " refused unless the exchange shows no position and no open order";
      form.append(button, note);
      panicForm.after(form);
    } else if (!locked && form) {
      form.remove();
    }
  }

  function renderHealth(health) {
    setText("health-status", `(${health.status})`);
    setText("health-error", health.error);
    setHidden("health-error", !health.error);
    fillBody("processes-body", health.processes, (tr, p) => {
      const name = cell(tr, p.name);
      if (!p.required) {
        const optional = document.createElement("small");
        optional.textContent = " (optional)";
        name.append(optional);
      }
      cell(tr, p.alive ? "running" : "down", p.alive ? "alive" : "down");
      cell(tr, p.last_heartbeat_text);
      cell(tr, p.age_text);
      cell(tr, p.pid);
      cell(tr, p.host);
    }, "No heartbeat seen.", 6);
  }

  function renderEngine(engine) {
    const summary = $("engine-summary");
    summary.textContent = "";
    if (!engine.available) {
      summary.textContent = "No figures from the engine yet.";
    } else {
      if (engine.ready) {
        summary.append("ready");
      } else {
        const strong = document.createElement("strong");
        strong.className = "down";
        strong.textContent = "not ready";
        summary.append(strong);
      }
      summary.append(` · ${engine.coins} coins · entries sent ${engine.entries_sent}` +
        ` · in flight ${engine.orders_in_flight}`);
    }
    fillBody("skip-counts-body", engine.skips || [], (tr, s) => {
      cell(tr, s.reason);
      cell(tr, s.count, "num");
    }, "No skips since the engine started.", 2);
  }

  function renderPanicReceipt(receipt) {
    setHidden("panic-receipt", !receipt);
    if (!receipt) return;
    setText("panic-receipt-summary", receipt.summary);
    $("panic-receipt-summary").className = receipt.flat ? "" : "down";
    setText("panic-receipt-errors", receipt.errors);
    setHidden("panic-receipt-errors", !receipt.errors);
    renderPanicReceiptDetail(receipt);
  }

  // The receipt's timings and closes.
  function renderPanicReceiptDetail(receipt) {
    setText("panic-receipt-timings", receipt.timings || "");
    setHidden("panic-receipt-timings", !receipt.timings);
    const closes = receipt.closes || [];
    setHidden("panic-receipt-closes-box", !closes.length);
    const list = $("panic-receipt-closes");
    if (!list) return;
    list.replaceChildren(...closes.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
  }

  // -- the engine's run and latency ------------------------------------------

  // The engine's pushes carry raw figures; the server's rows carry latency_text too.
  function figureText(value, unit) {
    if (value === null || value === undefined) return "–";
    return Math.abs(value) >= 100 ? `${Math.round(value).toLocaleString("en-US")} ${unit}` : `${value} ${unit}`;
  }

  function latencyText(d) {
    const parts = [];
    if (d.event_age_ms != null) parts.push(`event age ${figureText(d.event_age_ms, "ms")}`);
    if (d.decide_us != null) parts.push(`decision ${figureText(d.decide_us, "µs")}`);
    if (d.ack_ms != null) parts.push(`ack ${figureText(d.ack_ms, "ms")}`);
    return parts.join(" · ");
  }

  function renderEngineRun(engine) {
    setText("engine-run", engine.mode
      ? `${engine.mode} run ${engine.run_id} since ${engine.started_text} UTC · ${engine.phase}` : "");
    setText("engine-not-current", engine.problem ? `Not current: ${engine.problem}` : "");
    setHidden("engine-not-current", !engine.problem);
    fillBody("engine-latency-body", engine.latency || [], (tr, l) => {
      cell(tr, l.figure);
      cell(tr, l.p50_text, "num");
      cell(tr, l.p99_text, "num");
      cell(tr, l.count, "num");
    }, "No figures.", 4);
  }

  // The last alerts (core.alerts): newest first, with what became of each.
  function renderAlerts(alerts) {
    if (!alerts) return;
    fillBody("alerts-body", alerts, (tr, a) => {
      cell(tr, a.time_text);
      cell(tr, a.kind);
      cell(tr, a.status, `alert-${a.status}`);
      cell(tr, a.text, "alert-text");
    }, "No alert yet.", 4);
  }

  function renderSnapshot(snapshot) {
    setText("redis-error", snapshot.redis_error);
    setHidden("redis-error", !snapshot.redis_error);
    setText("exchange-error", snapshot.exchange_problem);
    setHidden("exchange-error", !snapshot.exchange_problem);
    renderAccount(snapshot.account);
    renderDaily(snapshot.daily);
    renderIm(snapshot.im);
    renderLock(snapshot.lock);
    renderHealth(snapshot.health);
    renderEngine(snapshot.engine);
    renderPanicReceipt(snapshot.panic_receipt);
    renderEngineRun(snapshot.engine);
    renderAlerts(snapshot.alerts);
    charts.equitySample(snapshot.equity_sample, snapshot.daily);
  }

  // -- charts (Chart.js, vendored under static/vendor/chartjs) ------------------------------

  const charts = {
    equity: null,
    daily: null,
    day: null,

    limitLines(daily, fromMs, toMs) {
      if (!daily || !daily.available) return [[], [], []];
      const line = (value) => [{ x: fromMs, y: Number(value) }, { x: toMs, y: Number(value) }];
      return [line(daily.baseline_adjusted || daily.baseline), line(daily.target_equity), line(daily.stop_equity)];
    },

    build(samples, history, daily, nowMs) {
      if (!window.Chart) return; // the vendored file failed to load: tables still work
      this.day = dayStartMs(nowMs);
      const points = samples.map(([ms, equity]) => ({ x: ms, y: Number(equity) }));
      const [baseline, target, stop] = this.limitLines(daily, this.day, nowMs);
      const dashed = (label, color, data) => ({
        label, data, borderColor: color, borderDash: [6, 4], borderWidth: 1, pointRadius: 0,
      });
      if (this.equity) this.equity.destroy();
      this.equity = new window.Chart($("equity-chart"), {
        type: "line",
        data: {
          datasets: [
            {
              label: "equity", data: points, borderColor: "#1a73e8", borderWidth: 2,
              // Dots only while there are too few samples to draw a line.
              pointRadius: (context) => (context.dataset.data.length < 3 ? 3 : 0),
            },
            dashed("baseline", "#888", baseline),
            dashed("target", "#137333", target),
            dashed("stop", "#b3261e", stop),
          ],
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          parsing: false,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: { type: "linear", min: this.day, ticks: { callback: (value) => hhmm(value), maxTicksLimit: 8 } },
            y: { ticks: { callback: (value) => money(value) } },
          },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { title: (items) => `${hhmmss(items[0].parsed.x)} UTC` } },
          },
        },
      });
      if (this.daily) this.daily.destroy();
      this.daily = new window.Chart($("daily-chart"), {
        type: "bar",
        data: {
          labels: history.map((row) => row.date),
          datasets: [{
            label: "PnL %",
            data: history.map((row) => Number(row.pnl_pct)),
            backgroundColor: history.map((row) => (Number(row.pnl_pct) >= 0 ? "#34a853" : "#ea4335")),
          }],
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          scales: { y: { ticks: { callback: (value) => `${value} %` } } },
          plugins: { legend: { display: false } },
        },
      });
    },

    equitySample(sample, daily) {
      if (!this.equity) return;
      if (sample) {
        const [ms, equity] = sample;
        if (dayStartMs(ms) !== this.day) {
          // A new UTC day: the intraday chart starts over.
          this.day = dayStartMs(ms);
          this.equity.data.datasets[0].data = [];
          this.equity.options.scales.x.min = this.day;
        }
        const points = this.equity.data.datasets[0].data;
        if (points.length === 0 || points[points.length - 1].x < ms) points.push({ x: ms, y: Number(equity) });
      }
      const points = this.equity.data.datasets[0].data;
      const lastMs = points.length ? points[points.length - 1].x : Date.now();
      const lines = this.limitLines(daily, this.day, Math.max(lastMs, Date.now()));
      lines.forEach((line, index) => { this.equity.data.datasets[index + 1].data = line; });
      this.equity.update("none");
    },
  };

  // -- the websocket ---------------------------------------------------------------------

  const status = $("live-status");
  function setStatus(text, className) {
    status.textContent = text;
    status.className = `live-status ${className || ""}`;
  }

  let attempts = 0;
  let lastMessageMs = 0;
  let socket = null;

  function handle(message) {
    lastMessageMs = Date.now();
    // Other parts of the page (pnl.js) render their own share of each message.
    document.dispatchEvent(new CustomEvent("dashboard:message", { detail: message }));
    switch (message.type) {
      case "state":
        renderSnapshot(message);
        decisions.replace(message.decisions);
        liquidations.replace(message.liquidations);
        charts.build(message.equity_samples, message.daily_history, message.daily, message.at_ms);
        break;
      case "snapshot":
        renderSnapshot(message);
        if (message.decisions && message.decisions.length) decisions.add(message.decisions);
        break;
      case "decisions":
        decisions.add(message.decisions);
        break;
      case "liquidations":
        liquidations.add(message.liquidations);
        break;
      default:
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}${document.body.dataset.wsPath}`);
    setStatus("connecting…");
    socket.onopen = () => {
      attempts = 0;
      lastMessageMs = Date.now();
      setStatus("live", "ok");
    };
    socket.onmessage = (event) => handle(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (event.code === 4403) {
        setStatus("logged out or no longer staff: reload the page to log in", "lost");
        return;
      }
      const delayS = Math.min(15, 2 ** attempts);
      attempts += 1;
      setStatus(`disconnected, retrying in ${delayS} s`, "lost");
      setTimeout(connect, delayS * 1000);
    };
  }

  // A socket that is open but silent (a stuck server) says so too.
  setInterval(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const silentS = (Date.now() - lastMessageMs) / 1000;
    if (silentS > Math.max(10, 3 * pushIntervalS)) setStatus(`no update for ${Math.round(silentS)} s`, "lost");
    else setStatus("live", "ok");
  }, 1000);

  decisions.rows = initial.decisions.slice(0, MAX_ROWS);
  liquidations.rows = initial.liquidations.slice(0, MAX_ROWS);
  charts.build(initial.equity_samples, initial.daily_history, initial.daily, initial.at_ms);
  connect();
})();
