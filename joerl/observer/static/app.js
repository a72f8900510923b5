// joerl observer: a single page over the JSON of /api/ (see joerl/observer/_app.py).
"use strict";
(function () {
  const main = document.getElementById("main");
  const statusEl = document.getElementById("status");
  const POLL_MS = 1000;
  let timer = null, view = 0, info = null;
  const sortState = { key: "mailbox_len", desc: true };
  const rates = { node: null, at: 0, received: new Map(), rate: new Map() };
  let charts = [];

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  // A message count, or "-" where the node does not count messages (null).
  function count(n) {
    return n == null ? "-" : String(n);
  }
  function api(path) {
    return fetch("api/" + path, { credentials: "same-origin" }).then(r => r.json().then(body => {
      if (!r.ok) throw new Error(body.error || r.statusText);
      return body;
    }));
  }
  function nodeHref(kind, node) { return "#/" + kind + "/" + encodeURIComponent(node); }
  function pidLink(pid) { return pid ? '<a class="pid" href="#/process/' + encodeURIComponent(pid) + '">' + esc(pid) + "</a>" : "-"; }
  function bytes(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " B"; }

  function route() {
    clearTimeout(timer);
    charts.forEach(c => c.destroy());
    charts = [];
    view += 1;
    const hash = decodeURIComponent(location.hash.slice(1) || "/");
    const parts = hash.split("/").filter(Boolean);
    document.querySelectorAll("header nav a").forEach(a => a.classList.remove("active"));
    const start = info ? Promise.resolve(info) : api("nodes").then(b => (info = b));
    start.then(() => {
      const node = parts[1] || info.default;
      document.getElementById("nav-processes").href = nodeHref("node", node);
      document.getElementById("nav-trees").href = nodeHref("tree", node);
      if (parts[0] === "node") return nodePage(node, view);
      if (parts[0] === "process") return processPage(parts.slice(1).join("/"), view);
      if (parts[0] === "tree") return treePage(node, view);
      return clusterPage(view);
    }).catch(showError);
  }
  function showError(err) { statusEl.innerHTML = '<span class="error">' + esc(err.message || err) + "</span>"; }
  function ok() { statusEl.textContent = "updated " + new Date().toLocaleTimeString(); }
  function again(v, fn, ms) { if (v === view) timer = setTimeout(() => { if (v === view) fn(); }, ms || POLL_MS); }

  // -- the cluster ------------------------------------------------------------------
  function clusterPage(v) {
    document.getElementById("nav-cluster").classList.add("active");
    main.innerHTML = '<h1>Cluster</h1><p class="muted">Seen from <b id="observer-node"></b>; links of <b id="default-node"></b>.</p><div id="nodes"></div>';
    const tick = () => api("nodes").then(b => {
      if (v !== view) return;
      info = b;
      document.getElementById("observer-node").textContent = b.observer;
      document.getElementById("default-node").textContent = b.default;
      const s = b.node.system;
      let html = '<table id="nodes-table"><thead><tr><th>node</th><th>link</th><th class="num">processes</th><th class="num">bytes in</th><th class="num">bytes out</th><th class="num">frames in</th><th class="num">frames out</th><th class="num">queued</th><th class="num">last heard</th></tr></thead><tbody>';
      html += '<tr data-node="' + esc(b.default) + '"><td><a href="' + nodeHref("node", b.default) + '">' + esc(b.default) + '</a></td><td><span class="badge">this node</span></td><td class="num">' + s.processes + '</td><td colspan="6" class="muted">' + b.node.peers.length + (b.node.peers.length === 1 ? " peer" : " peers") + "</td></tr>";
      for (const p of b.peers) {
        html += '<tr data-node="' + esc(p.name) + '"><td><a href="' + nodeHref("node", p.name) + '">' + esc(p.name) + "</a></td><td>" + esc(p.state) + '</td><td class="num muted">-</td><td class="num">' + bytes(p.bytes_in) + '</td><td class="num">' + bytes(p.bytes_out) + '</td><td class="num">' + p.frames_in + '</td><td class="num">' + p.frames_out + '</td><td class="num">' + bytes(p.queue_bytes) + '</td><td class="num">' + (p.silent_for == null ? "-" : p.silent_for.toFixed(1) + " s") + "</td></tr>";
      }
      document.getElementById("nodes").innerHTML = html + "</tbody></table>";
      ok();
    }).catch(showError).then(() => again(v, tick, 2000));
    tick();
  }

  // -- a node's processes -----------------------------------------------------------
  const COLUMNS = [
    ["pid", "pid"], ["name", "name"], ["actor", "actor"], ["status", "status"],
    ["mailbox_len", "mailbox", 1], ["received", "in", 1], ["sent", "out", 1], ["rate", "msg/s", 1], ["memory", "memory", 1],
  ];
  function nodePage(node, v) {
    document.getElementById("nav-processes").classList.add("active");
    main.innerHTML = '<h1>Processes of <span id="node-name"></span></h1><div class="summary" id="summary"></div>' +
      '<div class="summary counters" id="counters"></div>' +
      '<div class="charts"><div class="chart" id="chart-processes"></div><div class="chart" id="chart-rate"></div></div>' +
      '<input id="filter" placeholder="filter: pid, name, actor, status" autocomplete="off">' +
      ' <span class="muted" id="count"></span><table id="processes"><thead><tr>' +
      COLUMNS.map(c => '<th data-key="' + c[0] + '"' + (c[2] ? ' class="num"' : "") + ">" + c[1] + "</th>").join("") +
      "</tr></thead><tbody></tbody></table>";
    document.getElementById("node-name").textContent = node;
    const filter = document.getElementById("filter");
    let rows = [];
    const draw = () => {
      const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      const shown = rows.filter(r => words.every(w => [r.pid, r.name || "", r.actor, r.status].join(" ").toLowerCase().includes(w)));
      const k = sortState.key, dir = sortState.desc ? -1 : 1;
      shown.sort((a, b) => (a[k] === b[k] ? 0 : (a[k] == null ? -1 : b[k] == null ? 1 : a[k] < b[k] ? -1 : 1)) * dir);
      document.querySelectorAll("#processes th").forEach(th => th.classList.toggle("sorted", th.dataset.key === k));
      document.querySelector("#processes tbody").innerHTML = shown.map(r =>
        '<tr data-pid="' + esc(r.pid) + '"><td>' + pidLink(r.pid) + '</td><td class="name">' + esc(r.name || "") + "</td><td>" + esc(r.actor) +
        "</td><td>" + esc(r.status) + '</td><td class="num">' + r.mailbox_len + '</td><td class="num">' + count(r.received) + '</td><td class="num">' + count(r.sent) +
        '</td><td class="num">' + r.rate.toFixed(1) + '</td><td class="num">' + bytes(r.memory) + "</td></tr>").join("");
      document.getElementById("count").textContent = shown.length + " of " + rows.length + " processes";
    };
    filter.addEventListener("input", draw);
    document.querySelectorAll("#processes th").forEach(th => th.addEventListener("click", () => {
      sortState.desc = sortState.key === th.dataset.key ? !sortState.desc : th.classList.contains("num");
      sortState.key = th.dataset.key;
      draw();
    }));
    const tick = () => api("processes?node=" + encodeURIComponent(node)).then(list => {
      if (v !== view) return;
      const now = Date.now() / 1000;
      if (rates.node !== node) { rates.node = node; rates.received.clear(); rates.rate.clear(); rates.at = now; }
      const dt = now - rates.at;
      for (const p of list) {
        const before = rates.received.get(p.pid);
        if (before != null && p.received != null && dt > 0) rates.rate.set(p.pid, Math.max(0, (p.received - before) / dt));
        p.rate = rates.rate.get(p.pid) || 0;
      }
      rates.received = new Map(list.map(p => [p.pid, p.received]));
      rates.at = now;
      rows = list;
      draw();
      summary(list);
      ok();
    }).catch(showError).then(() => again(v, tick));
    const summary = list => {
      const queued = list.reduce((n, p) => n + p.mailbox_len, 0), rate = list.reduce((n, p) => n + p.rate, 0);
      document.getElementById("summary").innerHTML = "<div><b>" + list.length + "</b>processes</div><div><b>" + queued +
        "</b>queued messages</div><div><b>" + rate.toFixed(1) + "</b>messages/s</div><div><b>" +
        list.filter(p => p.supervisor).length + '</b>supervisors (<a href="' + nodeHref("tree", node) + '">trees</a>)</div>';
    };
    tick();
    chartLoop(node, v);
  }

  function chartLoop(node, v) {
    const make = (id, label, color) => typeof uPlot === "undefined" ? null : new uPlot({
      width: 420, height: 180, title: label,
      series: [{}, { label: label, stroke: color, width: 2, fill: color + "22" }],
      axes: [{}, { size: 50 }],
    }, [[], []], document.getElementById(id));
    const procs = make("chart-processes", "processes", "#2b6cb0"), rate = make("chart-rate", "messages/s", "#c05621");
    charts = [procs, rate].filter(Boolean);
    const sum = o => Object.values(o || {}).reduce((a, b) => a + b, 0);
    const counters = m => {
      const items = [["restarts", m.restarts], ["crashed", m.processes_crashed], ["spawned", m.processes_spawned],
        ["dropped", sum(m.messages_dropped) + sum(m.node_messages_dropped)], ["mailbox high water", m.mailbox_high_water],
        ["links alive", m.links_alive], ["node msgs in", m.node_messages_received], ["node msgs out", m.node_messages_sent]];
      document.getElementById("counters").innerHTML = items.filter(i => i[1] != null)
        .map(i => '<div data-counter="' + esc(i[0]) + '"><b>' + esc(i[1]) + "</b>" + esc(i[0]) + "</div>").join("");
    };
    const tick = () => Promise.all([api("history?node=" + encodeURIComponent(node)), api("metrics?node=" + encodeURIComponent(node))]).then(([h, m]) => {
      if (v !== view) return;
      if (procs) procs.setData([h.t, h.processes]);
      if (rate) rate.setData([h.t, h.rate]);
      counters(m);
    }).catch(showError).then(() => again(v, tick, 2000));
    tick();
  }

  // -- one process --------------------------------------------------------------------
  function processPage(pid, v) {
    main.innerHTML = '<h1>Process <span id="pid"></span></h1><div id="process"></div>';
    document.getElementById("pid").textContent = pid;
    const list = xs => xs && xs.length ? xs.map(x => typeof x === "string" && x[0] === "<" ? pidLink(x) : esc(x)).join(", ") : "-";
    const tick = () => api("process?pid=" + encodeURIComponent(pid)).then(p => {
      if (v !== view) return;
      document.getElementById("process").innerHTML = '<dl class="info">' +
        "<dt>node</dt><dd>" + (p.node ? '<a href="' + nodeHref("node", p.node) + '">' + esc(p.node) + "</a>" : "-") + "</dd>" +
        '<dt>name</dt><dd id="p-name">' + esc(p.name || "-") + "</dd><dt>actor</dt><dd>" + esc(p.actor) + "</dd>" +
        "<dt>behaviour</dt><dd>" + esc(p.behaviour || "-") + '</dd><dt>status</dt><dd id="p-status">' + esc(p.status) + "</dd>" +
        '<dt>mailbox</dt><dd id="p-mailbox">' + p.mailbox_len + "</dd><dt>messages in / out</dt><dd>" + count(p.received) + " / " + count(p.sent) + "</dd>" +
        "<dt>links</dt><dd>" + list(p.links) + "</dd><dt>monitors</dt><dd>" + list(p.monitors) + "</dd>" +
        "<dt>monitored by</dt><dd>" + list(p.monitored_by) + "</dd><dt>trap_exit</dt><dd>" + p.trap_exit + "</dd>" +
        "<dt>" + (p.parent ? "parent / supervisor" : "parent") + '</dt><dd id="p-parent">' + pidLink(p.parent) + "</dd>" +
        "<dt>memory (estimate)</dt><dd>" + bytes(p.memory) + "</dd></dl>" +
        (p.state != null ? '<h2>State</h2><pre class="state" id="p-state">' + esc(p.state) + "</pre>" : "") +
        (p.messages && p.messages.length ? '<h2>Mailbox (first ' + p.messages.length + ')</h2><ol id="p-messages">' +
          p.messages.map(m => "<li><code>" + esc(m) + "</code></li>").join("") + "</ol>" : "");
      ok();
    }).catch(err => {
      if (v !== view) return;
      document.getElementById("process").innerHTML = '<p class="error" id="p-gone">' + esc(err.message) + "</p>";
    }).then(() => again(v, tick, 2000));
    tick();
  }

  // -- supervision trees ----------------------------------------------------------------
  function treePage(node, v) {
    document.getElementById("nav-trees").classList.add("active");
    main.innerHTML = '<h1>Supervision trees of <span id="tree-node"></span></h1><div id="trees"></div>';
    document.getElementById("tree-node").textContent = node;
    const tick = () => api("processes?node=" + encodeURIComponent(node)).then(list => {
      if (v !== view) return;
      const byPid = new Map(list.map(p => [p.pid, p])), children = new Map();
      for (const p of list) if (p.parent && byPid.has(p.parent)) {
        if (!children.has(p.parent)) children.set(p.parent, []);
        children.get(p.parent).push(p);
      }
      const label = p => '<span class="' + (p.supervisor ? "sup" : "") + '">' + pidLink(p.pid) + " " + esc(p.name || "") +
        ' <span class="muted">' + esc(p.actor.split(".").pop()) + "</span></span>";
      const branch = p => "<li data-pid=\"" + esc(p.pid) + "\">" + label(p) +
        (children.has(p.pid) ? "<ul>" + children.get(p.pid).map(branch).join("") + "</ul>" : "") + "</li>";
      const roots = list.filter(p => p.supervisor && !(p.parent && byPid.has(p.parent) && byPid.get(p.parent).supervisor));
      document.getElementById("trees").innerHTML = roots.length ? '<ul class="tree">' + roots.map(branch).join("") + "</ul>" :
        '<p class="muted">no supervisors on this node</p>';
      ok();
    }).catch(showError).then(() => again(v, tick, 2000));
    tick();
  }

  window.addEventListener("hashchange", route);
  route();
})();
