// Pigeon's live dashboard: polls the admin API (/api/v1) once a second, draws
// the last ten minutes of throughput and connections on <canvas>, and streams a
// topic filter's messages over EventSource. Plain browser JS, no build step.
//
// Everything that comes from the broker (client ids, topics, payloads, user
// names) reaches the page through textContent or setAttribute, never innerHTML.
"use strict";

(() => {
  const API = "api/v1";
  const WINDOW_MS = 10 * 60 * 1000; // the charts' time span
  const MONITOR_ROWS = 200; // the monitor keeps this many, newest first
  const LIST_LIMIT = 100; // rows fetched for the clients and subscriptions tables
  const TOKEN_KEY = "pigeon.admin_token";
  const DROP_REASONS = {
    no_subscribers: "no subscribers",
    slow_subscriber: "slow subscriber",
    queue_full: "queue full",
    memory_budget: "memory budget",
    expired: "expired",
    too_large: "too large",
  };

  const $ = (id) => document.getElementById(id);

  // ---- token -------------------------------------------------------------

  function takeTokenFromFragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const token = params.get("token");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      params.delete("token");
      const rest = params.toString();
      // Keep the token out of the address bar (and of screenshots, bookmarks).
      history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  class AuthError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    const res = await fetch(API + path, { ...options, headers, cache: "no-store" });
    if (res.status === 204) return null;
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      // not JSON: the status says enough
    }
    const message = (body && body.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401 || res.status === 403) throw new AuthError(res.status, message);
    if (!res.ok) throw new Error(message);
    return body;
  }

  function askForToken(err) {
    $("login-reason").textContent =
      err.status === 403 && !token()
        ? `The broker refused: ${err.message}.`
        : err.status === 403
          ? `The broker refused this token: ${err.message}.`
          : token()
            ? `The token was not accepted (${err.message}). Enter the broker's admin_token.`
            : "This broker's admin API needs a token: enter its admin_token.";
    $("login").hidden = false;
    $("login-token").focus();
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("login-token").value.trim());
    $("login-token").value = "";
    $("login").hidden = true;
    authBlocked = false;
    needHistory = true;
    tick();
    refreshLists();
  });

  // ---- status ------------------------------------------------------------

  let authBlocked = false;

  function setStatus(state, text) {
    const el = $("status");
    el.dataset.state = state;
    el.textContent = text;
  }

  function failed(err) {
    if (err instanceof AuthError) {
      if (!authBlocked) {
        authBlocked = true;
        stopMonitor("stopped");
        askForToken(err);
      }
      setStatus("error", err.status === 401 ? "unauthorized" : "forbidden");
    } else {
      setStatus("error", "error: " + err.message);
    }
  }

  // ---- formatting --------------------------------------------------------

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  const fine = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

  const count = (n) => (typeof n === "number" ? integer.format(n) : "–");
  const rate = (n) => (n >= 100 ? integer.format(n) : decimal.format(n));

  function compact(n) {
    const abs = Math.abs(n);
    if (abs >= 1e9) return decimal.format(n / 1e9) + "G";
    if (abs >= 1e6) return decimal.format(n / 1e6) + "M";
    if (abs >= 1e3) return decimal.format(n / 1e3) + "k";
    return abs < 10 ? fine.format(n) : decimal.format(n);
  }

  function duration(secs) {
    const d = Math.floor(secs / 86400);
    const h = Math.floor((secs % 86400) / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = Math.floor(secs % 60);
    if (d) return `${d}d ${h}h ${m}m`;
    if (h) return `${h}h ${m}m ${s}s`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  const clock = (ms) => {
    const t = new Date(ms);
    return t.toLocaleTimeString("en-GB", { hour12: false }) + "." + String(t.getMilliseconds()).padStart(3, "0");
  };

  // A DOM element; string and number children become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "data") for (const [k, v] of Object.entries(value)) node.dataset[k] = v;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const emptyRow = (columns, text) => el("tr", { class: "empty" }, el("td", { colspan: columns }, text));

  // ---- overview and history ----------------------------------------------

  // One sample a second: {at (local ms), in, out, conns}.
  let samples = [];
  let previous = null; // {at, received, sent}: the last overview's counters
  let needHistory = true;
  let historyAt = 0; // when the samples were last replaced by the broker's own
  const RESEED_MS = 30000; // how often: client-side deltas jitter with request latency

  async function loadHistory() {
    const history = await api("/history");
    const list = (history && history.samples) || [];
    historyAt = Date.now();
    if (!list.length) return;
    // Line the server's clock up with ours: its last sample is "now".
    const shift = Date.now() - list[list.length - 1].at;
    samples = list.map((s) => ({
      at: s.at + shift,
      in: s.messages_in,
      out: s.messages_out,
      conns: s.connections,
    }));
  }

  function showOverview(o) {
    $("node").textContent = o.node;
    $("version").textContent = o.version;
    $("uptime").textContent = duration(o.uptime_secs);
    $("connections").textContent = count(o.connections);
    $("connections-max").textContent = o.connections_max ? `peak ${count(o.connections_max)}` : "";
    $("sessions").textContent = count(o.sessions);
    $("subscription-count").textContent = count(o.subscriptions);
    $("retained").textContent = count(o.retained);
    showDrops(o.drops || {});
  }

  function showDrops(drops) {
    const keys = Object.keys(DROP_REASONS).concat(Object.keys(drops).filter((k) => !(k in DROP_REASONS)));
    let total = 0;
    const rows = keys.map((key) => {
      const n = Number(drops[key]) || 0;
      total += n;
      return el(
        "tr",
        { class: n ? "hot" : "zero", data: { reason: key } },
        el("td", null, DROP_REASONS[key] || key.replace(/_/g, " ")),
        el("td", { class: "num" }, count(n)),
      );
    });
    $("drops").replaceChildren(...rows);
    $("drops-total").textContent = total ? `${count(total)} in total` : "none";
  }

  // Appends the rate since the previous overview; `now` is when `o` was read.
  function record(o, now) {
    const current = { at: now, received: o.messages_received, sent: o.messages_sent };
    if (previous && current.received >= previous.received && current.sent >= previous.sent) {
      const secs = Math.max((now - previous.at) / 1000, 0.001);
      samples.push({
        at: now,
        in: (current.received - previous.received) / secs,
        out: (current.sent - previous.sent) / secs,
        conns: o.connections,
      });
    }
    previous = current;
    while (samples.length && samples[0].at < now - WINDOW_MS) samples.shift();
    const last = samples[samples.length - 1];
    $("rate-in").textContent = last ? rate(last.in) : "0";
    $("rate-out").textContent = last ? rate(last.out) : "0";
  }

  let ticking = false;
  async function tick() {
    if (ticking || authBlocked) return;
    ticking = true;
    try {
      if (needHistory || Date.now() - historyAt > RESEED_MS) {
        await loadHistory();
        needHistory = false;
        previous = null;
      }
      const asked = Date.now();
      const o = await api("/overview");
      showOverview(o);
      record(o, (asked + Date.now()) / 2);
      drawCharts();
      setStatus("ok", "connected");
    } catch (err) {
      needHistory = true; // fill the gap once the broker answers again
      failed(err);
    } finally {
      ticking = false;
    }
  }

  // ---- charts ------------------------------------------------------------

  const COLORS = { in: "#2563eb", out: "#16a34a", conns: "#9333ea", grid: "#e5e7eb", text: "#6b7280" };

  // A round step for the y axis' four intervals: 1, 2 or 5 times a power of ten.
  function niceStep(value) {
    if (!(value > 0)) return 0.25;
    const p = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 5]) if (m * p >= value) return m * p;
    return 10 * p;
  }

  // Draws series (keys of the samples) on canvas over the last WINDOW_MS
  // (or since the first sample, when that is more recent).
  function drawChart(canvas, keys, integerAxis) {
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const pad = { left: 44, right: 8, top: 8, bottom: 20 };
    const w = width - pad.left - pad.right;
    const h = height - pad.top - pad.bottom;
    const end = Date.now();
    // The last ten minutes, or since the first sample when the broker is
    // younger (whole minutes, at least one), so a new broker's lines are not
    // a sliver at the right edge.
    const first = samples.length ? samples[0].at : end;
    const span = Math.min(WINDOW_MS, Math.max(60000, Math.ceil((end - first) / 60000) * 60000));
    const start = end - span;
    let top = 0;
    for (const s of samples) for (const k of keys) top = Math.max(top, s[k] || 0);
    const stepY = integerAxis ? Math.max(1, Math.ceil(niceStep(top / 4))) : niceStep(top / 4);
    top = 4 * stepY;
    const x = (at) => pad.left + ((at - start) / span) * w;
    const y = (v) => pad.top + h - (v / top) * h;

    // Grid and labels.
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLORS.grid;
    ctx.fillStyle = COLORS.text;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const v = stepY * i;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(pad.left + w, yy);
      ctx.stroke();
      ctx.fillText(compact(v), pad.left - 6, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let i = 5; i >= 0; i--) {
      const ago = (span / 5) * i;
      const label = i === 0 ? "now" : ago % 60000 === 0 ? `-${ago / 60000}m` : `-${Math.round(ago / 1000)}s`;
      const xx = x(end - ago);
      ctx.fillText(label, Math.min(Math.max(xx, pad.left + 10), pad.left + w - 12), pad.top + h + 5);
    }

    // One line per series; a gap of more than 3 s between samples breaks it.
    for (const key of keys) {
      ctx.strokeStyle = COLORS[key];
      ctx.fillStyle = COLORS[key] + "1a";
      ctx.lineWidth = 1.5;
      ctx.lineJoin = "round";
      let run = [];
      const flush = () => {
        if (run.length > 1) {
          ctx.beginPath();
          run.forEach((s, i) => (i ? ctx.lineTo(x(s.at), y(s[key])) : ctx.moveTo(x(s.at), y(s[key]))));
          ctx.stroke();
          ctx.lineTo(x(run[run.length - 1].at), y(0));
          ctx.lineTo(x(run[0].at), y(0));
          ctx.closePath();
          ctx.fill();
        } else if (run.length === 1) {
          ctx.fillStyle = COLORS[key];
          ctx.fillRect(x(run[0].at) - 1.5, y(run[0][key]) - 1.5, 3, 3);
          ctx.fillStyle = COLORS[key] + "1a";
        }
        run = [];
      };
      for (const s of samples) {
        if (s.at < start) continue;
        if (run.length && s.at - run[run.length - 1].at > 3000) flush();
        run.push(s);
      }
      flush();
    }
  }

  function drawCharts() {
    drawChart($("chart-throughput"), ["in", "out"], false);
    drawChart($("chart-connections"), ["conns"], true);
  }

  window.addEventListener("resize", drawCharts);

  // ---- clients and subscriptions -----------------------------------------

  let selectedClient = null; // the subscriptions table shows this client's only

  async function loadClients() {
    const prefix = $("client-search").value.trim();
    const q = new URLSearchParams({ state: "connected", limit: LIST_LIMIT });
    if (prefix) q.set("prefix", prefix);
    const page = await api("/clients?" + q);
    const rows = page.data.map((c) =>
      el(
        "tr",
        { data: { clientId: c.client_id }, class: c.client_id === selectedClient ? "selected" : null },
        el(
          "td",
          { class: "id" },
          el("button", { type: "button", class: "link", title: "show its subscriptions", onclick: () => selectClient(c.client_id) }, c.client_id),
        ),
        el("td", { class: c.username === null ? "muted" : null }, c.username === null ? "—" : c.username),
        el("td", null, c.protocol || "—"),
        el("td", { class: "mono" }, c.address || "—"),
        el("td", { class: "num" }, count(c.subscription_count)),
        el("td", { class: "num" }, count(c.queue_length)),
        el("td", { class: "num" }, count(c.inflight)),
        el(
          "td",
          { class: "action" },
          el("button", { type: "button", class: "danger", onclick: (ev) => disconnect(c.client_id, ev.currentTarget) }, "disconnect"),
        ),
      ),
    );
    $("clients").replaceChildren(...(rows.length ? rows : [emptyRow(8, prefix ? `No connected client id starts with “${prefix}”.` : "No client is connected.")]));
    const total = page.meta ? page.meta.count : rows.length;
    $("clients-count").textContent = total > rows.length ? `${rows.length} of ${count(total)}` : count(total);
  }

  async function disconnect(clientId, button) {
    if (!confirm(`Disconnect ${clientId}?`)) return;
    button.disabled = true;
    try {
      await api("/clients/" + encodeURIComponent(clientId), { method: "DELETE" });
      setStatus("ok", `disconnected ${clientId}`);
    } catch (err) {
      failed(err);
    }
    refreshLists();
  }

  function selectClient(clientId) {
    selectedClient = clientId === selectedClient ? null : clientId;
    refreshLists();
  }

  async function loadSubscriptions() {
    const q = new URLSearchParams({ limit: LIST_LIMIT });
    if (selectedClient !== null) q.set("client_id", selectedClient);
    const page = await api("/subscriptions?" + q);
    const rows = page.data.map((s) =>
      el(
        "tr",
        { data: { clientId: s.client_id, filter: s.filter } },
        el("td", { class: "id" }, s.client_id),
        el("td", { class: "mono" }, s.filter),
        el("td", { class: "num" }, s.qos),
      ),
    );
    $("subscriptions").replaceChildren(...(rows.length ? rows : [emptyRow(3, "No subscriptions.")]));
    const total = page.meta ? page.meta.count : rows.length;
    const shown = total > rows.length ? `${rows.length} of ${count(total)}` : count(total);
    $("subscriptions-count").textContent = selectedClient === null ? shown : `${shown} of ${selectedClient}`;
    $("subscriptions-all").hidden = selectedClient === null;
  }

  $("subscriptions-all").addEventListener("click", () => selectClient(selectedClient));

  let listing = false;
  let listAgain = false;
  async function refreshLists() {
    if (authBlocked) return;
    if (listing) {
      listAgain = true; // a search changed while a request was out
      return;
    }
    listing = true;
    try {
      await Promise.all([loadClients(), loadSubscriptions()]);
    } catch (err) {
      failed(err);
    } finally {
      listing = false;
      if (listAgain) {
        listAgain = false;
        refreshLists();
      }
    }
  }

  let searchTimer = 0;
  $("client-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshLists, 200);
  });

  // ---- topic monitor -----------------------------------------------------

  let source = null;
  let pending = [];
  let flushQueued = false;

  function monitorState(text, state) {
    const el = $("monitor-state");
    el.textContent = text;
    el.dataset.state = state || "";
  }

  function stopMonitor(text) {
    if (source) {
      source.close();
      source = null;
      monitorState(text || "stopped");
    }
    $("monitor-stop").disabled = true;
  }

  function startMonitor(filter) {
    stopMonitor();
    const q = new URLSearchParams({ filter });
    if (token()) q.set("token", token());
    const url = API + "/monitor?" + q;
    const es = new EventSource(url);
    source = es;
    $("monitor-stop").disabled = false;
    monitorState(`connecting to ${filter}…`, "busy");
    es.onopen = () => source === es && monitorState(`watching ${filter}`, "live");
    es.onmessage = (ev) => {
      if (source !== es) return;
      try {
        pending.push(JSON.parse(ev.data));
      } catch (_) {
        return; // not a message event
      }
      if (!flushQueued) {
        flushQueued = true;
        requestAnimationFrame(flushMonitor);
      }
    };
    es.onerror = () => {
      if (source !== es) return;
      if (es.readyState !== EventSource.CLOSED) {
        monitorState(`reconnecting to ${filter}…`, "busy"); // EventSource retries by itself
        return;
      }
      source = null;
      $("monitor-stop").disabled = true;
      explainMonitorFailure(url);
    };
  }

  // EventSource hides the status of a refused stream: ask once with fetch.
  async function explainMonitorFailure(url) {
    monitorState("stopped: the broker refused the stream", "error");
    const abort = new AbortController();
    try {
      const headers = token() ? { Authorization: "Bearer " + token() } : {};
      const res = await fetch(url, { headers, signal: abort.signal, cache: "no-store" });
      if (!res.ok) {
        let message = `${res.status} ${res.statusText}`;
        try {
          message = (await res.json()).error || message;
        } catch (_) {
          // keep the status
        }
        monitorState("stopped: " + message, "error");
        if (res.status === 401 || res.status === 403) failed(new AuthError(res.status, message));
      }
    } catch (_) {
      monitorState("stopped: the broker is unreachable", "error");
    } finally {
      abort.abort();
    }
  }

  function payloadCell(m) {
    if (m.payload !== null && m.payload !== undefined) {
      return el("td", { class: "payload mono", title: m.payload.length > 80 ? m.payload.slice(0, 2000) : null }, m.payload);
    }
    return el("td", { class: "payload mono binary", title: "binary payload, base64" }, m.payload_base64 || "", el("span", { class: "tag" }, "base64"));
  }

  function flushMonitor() {
    flushQueued = false;
    const body = $("monitor-messages");
    const fresh = pending.slice(-MONITOR_ROWS);
    pending = [];
    const rows = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i--) {
      const m = fresh[i];
      const flags = [m.retain ? "retain" : null].filter(Boolean).join(" ");
      rows.append(
        el(
          "tr",
          { data: { topic: m.topic } },
          el("td", { class: "time mono" }, clock(m.at || Date.now())),
          el("td", { class: "topic mono" }, m.topic),
          el("td", { class: "num" }, m.qos),
          el("td", null, flags ? el("span", { class: "tag" }, flags) : ""),
          el("td", { class: "num" }, count(m.size)),
          payloadCell(m),
        ),
      );
    }
    body.querySelector("tr.empty")?.remove();
    body.prepend(rows);
    while (body.rows.length > MONITOR_ROWS) body.lastElementChild.remove();
  }

  $("monitor-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const filter = $("monitor-filter").value.trim();
    if (filter) startMonitor(filter);
  });
  $("monitor-stop").addEventListener("click", () => stopMonitor("stopped"));
  $("monitor-clear").addEventListener("click", () => {
    pending = [];
    $("monitor-messages").replaceChildren(emptyRow(6, "No messages yet."));
  });

  // ---- start -------------------------------------------------------------

  takeTokenFromFragment();
  showDrops({});
  $("monitor-messages").replaceChildren(emptyRow(6, "Type a topic filter and press Watch."));
  drawCharts();
  tick();
  refreshLists();
  setInterval(tick, 1000);
  setInterval(refreshLists, 2000);
})();
