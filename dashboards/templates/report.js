// fleetledger report: draws every panel as inline SVG / HTML. No libraries, no network.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#2f6fed", "#f79009", "#12b76a", "#f04438", "#7a5af8", "#0ba5ec", "#ee46bc", "#667085",
                "#a15c07", "#16b364", "#6172f3", "#dd2590", "#099250", "#b42318", "#4e5ba6", "#c4320a"];
  var tip = document.getElementById("tooltip");
  var drawn = 0;

  function el(tag, attrs, parent, ns) {
    var e = ns ? document.createElementNS(NS, tag) : document.createElement(tag);
    for (var k in attrs || {}) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function fmt(v, unit) {
    if (v === null || v === undefined) { return "–"; }
    if (typeof v !== "number") { return String(v); }
    var a = Math.abs(v), s;
    if (unit === "percentunit") { return (v * 100).toFixed(1) + "%"; }
    if (Number.isInteger(v) && a < 1e4 && unit === "none") { return String(v); }
    s = a >= 1e6 ? (v / 1e6).toFixed(2) + "M" : a >= 1e4 ? (v / 1e3).toFixed(1) + "k" : a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
    if (unit === "currencyUSD") { return "$" + s; }
    if (unit === "percent") { return s + "%"; }
    if (unit === "kwatt") { return s + " kW"; }
    if (unit === "watt") { return s + " W"; }
    if (unit === "s") { return s + " s"; }
    return s;
  }
  function fmtTime(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); }
  function showTip(evt, html) {
    tip.innerHTML = html; tip.hidden = false;
    var x = evt.clientX + 14, y = evt.clientY + 12;
    if (x + tip.offsetWidth > window.innerWidth) { x = evt.clientX - tip.offsetWidth - 14; }
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  function hideTip() { tip.hidden = true; }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c]; }); }
  function col(panel, i) { return panel.data.columns[i]; }
  function firstOf(panel, kind, skip) {
    var cols = panel.data.columns;
    for (var i = 0; i < cols.length; i++) { if (cols[i].kind === kind && i !== skip) { return i; } }
    return -1;
  }
  function axes(svg, W, H, m, xs, ys, xFmt, yFmt) {
    var g = el("g", {"class": "axis"}, svg, true);
    el("line", {x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b}, g, true);
    for (var i = 0; i <= 4; i++) {
      var v = ys.min + (ys.max - ys.min) * i / 4, y = ys.map(v);
      el("line", {x1: m.l, y1: y, x2: W - m.r, y2: y, "stroke-dasharray": "2,3"}, g, true);
      el("text", {x: m.l - 4, y: y + 3, "text-anchor": "end"}, g, true).textContent = yFmt(v);
    }
    for (var j = 0; j <= 4; j++) {
      var xv = xs.min + (xs.max - xs.min) * j / 4;
      el("text", {x: xs.map(xv), y: H - m.b + 14, "text-anchor": "middle"}, g, true).textContent = xFmt(xv);
    }
  }
  function scale(min, max, a, b) {
    if (max === min) { max = min + 1; }
    return {min: min, max: max, map: function (v) { return a + (v - min) / (max - min) * (b - a); }};
  }

  function drawTimeseries(panel, box) {
    var cols = panel.data.columns, t = firstOf(panel, "time"), v = -1, s = firstOf(panel, "string");
    for (var i = cols.length - 1; i >= 0; i--) { if (cols[i].kind === "number") { v = i; break; } }
    var series = {}, order = [], xmin = Infinity, xmax = -Infinity, ymax = 0, ymin = 0;
    for (var r = 0; r < panel.data.rows; r++) {
      var name = s >= 0 ? cols[s].values[r] : cols[v].name, x = cols[t].values[r], y = cols[v].values[r];
      if (x === null || y === null) { continue; }
      if (!series[name]) { series[name] = []; order.push(name); }
      series[name].push([x, y]);
      xmin = Math.min(xmin, x); xmax = Math.max(xmax, x); ymax = Math.max(ymax, y); ymin = Math.min(ymin, y);
    }
    var W = 640, H = 240, m = {l: 56, r: 10, t: 8, b: 22};
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box, true);
    var xs = scale(xmin, xmax, m.l, W - m.r), ys = scale(ymin, ymax * 1.05, H - m.b, m.t);
    axes(svg, W, H, m, xs, ys, function (ms) { return fmtTime(ms).slice(5); }, function (y) { return fmt(y, panel.unit); });
    var paths = {}, hidden = {};
    order.forEach(function (name, k) {
      var pts = series[name].map(function (p) { return xs.map(p[0]).toFixed(1) + "," + ys.map(p[1]).toFixed(1); });
      paths[name] = el("polyline", {points: pts.join(" "), fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": 1.6}, svg, true);
    });
    var cursor = el("line", {y1: m.t, y2: H - m.b, stroke: "#98a2b3", "stroke-width": 1, visibility: "hidden"}, svg, true);
    var hit = el("rect", {x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, fill: "transparent"}, svg, true);
    hit.addEventListener("mousemove", function (evt) {
      var rect = svg.getBoundingClientRect(), px = (evt.clientX - rect.left) * W / rect.width;
      var tx = xmin + (px - m.l) / (W - m.l - m.r) * (xmax - xmin), lines = [], best = null;
      order.forEach(function (name, k) {
        if (hidden[name]) { return; }
        var pts = series[name], near = pts[0];
        for (var i = 1; i < pts.length; i++) { if (Math.abs(pts[i][0] - tx) < Math.abs(near[0] - tx)) { near = pts[i]; } }
        best = best === null ? near[0] : best;
        lines.push("<i style=\"color:" + COLORS[k % COLORS.length] + "\">&#9632;</i> " + esc(name) + ": " + fmt(near[1], panel.unit));
      });
      if (best === null) { return; }
      cursor.setAttribute("x1", xs.map(best)); cursor.setAttribute("x2", xs.map(best)); cursor.setAttribute("visibility", "visible");
      showTip(evt, "<b>" + fmtTime(best) + "</b><br>" + lines.slice(0, 14).join("<br>"));
    });
    hit.addEventListener("mouseleave", function () { hideTip(); cursor.setAttribute("visibility", "hidden"); });
    var legend = el("div", {"class": "legend"}, box);
    order.forEach(function (name, k) {
      var item = el("span", {title: "click to hide / show"}, legend);
      item.innerHTML = "<i style=\"background:" + COLORS[k % COLORS.length] + "\"></i>" + esc(name);
      item.addEventListener("click", function () {
        hidden[name] = !hidden[name];
        item.classList.toggle("off", hidden[name]);
        paths[name].setAttribute("visibility", hidden[name] ? "hidden" : "visible");
      });
    });
  }

  function drawBars(panel, box, share) {
    var cols = panel.data.columns, l = firstOf(panel, "string"), v = firstOf(panel, "number");
    var n = Math.min(panel.data.rows, 20), total = 0, max = 0;
    for (var r = 0; r < panel.data.rows; r++) { total += cols[v].values[r] || 0; }
    for (var q = 0; q < n; q++) { max = Math.max(max, cols[v].values[q] || 0); }
    var W = 640, rowH = 18, m = {l: 220, r: 70}, H = n * rowH + 6;
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box, true);
    for (var i = 0; i < n; i++) {
      var y = 3 + i * rowH, val = cols[v].values[i] || 0, w = max > 0 ? (W - m.l - m.r) * val / max : 0;
      var label = l >= 0 ? cols[l].values[i] : String(i + 1);
      el("text", {x: m.l - 6, y: y + 12, "text-anchor": "end", "font-size": 11, fill: "#344054"}, svg, true).textContent = label.length > 34 ? label.slice(0, 33) + "…" : label;
      var bar = el("rect", {x: m.l, y: y + 2, width: Math.max(w, 0.5), height: rowH - 5, rx: 2, fill: COLORS[share ? i % COLORS.length : 0]}, svg, true);
      var txt = fmt(val, panel.unit) + (share && total > 0 ? " (" + (100 * val / total).toFixed(1) + "%)" : "");
      el("text", {x: m.l + w + 4, y: y + 12, "font-size": 11, fill: "#344054"}, svg, true).textContent = txt;
      (function (row, label) {
        bar.addEventListener("mousemove", function (evt) {
          var parts = cols.map(function (c) { return esc(c.name) + ": " + esc(fmt(c.values[row], c === cols[v] ? panel.unit : "none")); });
          showTip(evt, "<b>" + esc(label) + "</b><br>" + parts.join("<br>"));
        });
        bar.addEventListener("mouseleave", hideTip);
      })(i, label);
    }
    if (panel.data.rows > n) { el("p", {"class": "desc"}, box).textContent = "top " + n + " of " + panel.data.rows; }
  }

  function drawHeatmap(panel, box) {
    var cols = panel.data.columns, xi = 0, yi = 1, vi = 2, xsSet = {}, ysSet = {}, max = 0;
    for (var r = 0; r < panel.data.rows; r++) {
      xsSet[cols[xi].values[r]] = 1; ysSet[cols[yi].values[r]] = 1; max = Math.max(max, cols[vi].values[r] || 0);
    }
    var xsv = Object.keys(xsSet).map(Number).sort(function (a, b) { return a - b; });
    var ysv = Object.keys(ysSet).map(Number).sort(function (a, b) { return a - b; });
    var W = 1000, m = {l: 40, t: 6, b: 20, r: 6}, cw = (W - m.l - m.r) / Math.max(xsv.length, 1);
    var ch = Math.max(4, Math.min(14, 600 / Math.max(ysv.length, 1))), H = m.t + ch * ysv.length + m.b;
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box, true);
    var xIdx = {}, yIdx = {};
    xsv.forEach(function (x, i) { xIdx[x] = i; }); ysv.forEach(function (y, i) { yIdx[y] = i; });
    var g = el("g", {}, svg, true);
    for (var k = 0; k < panel.data.rows; k++) {
      var x = cols[xi].values[k], y = cols[yi].values[k], v = cols[vi].values[k] || 0, a = max > 0 ? v / max : 0;
      var cell = el("rect", {x: m.l + xIdx[x] * cw, y: m.t + yIdx[y] * ch, width: Math.max(cw - 0.5, 0.5), height: ch - 0.5,
                             fill: "rgb(" + Math.round(255 - 8 * a) + "," + Math.round(245 - 150 * a) + "," + Math.round(235 - 215 * a) + ")"}, g, true);
      cell.setAttribute("data-tip", esc(cols[yi].name) + " " + y + ", " + esc(cols[xi].name) + " " + x + ": " + fmt(v, panel.unit));
    }
    g.addEventListener("mousemove", function (evt) { var t = evt.target.getAttribute("data-tip"); if (t) { showTip(evt, t); } });
    g.addEventListener("mouseleave", hideTip);
    var ax = el("g", {"class": "axis"}, svg, true);
    [0, Math.floor(ysv.length / 2), ysv.length - 1].forEach(function (i) {
      el("text", {x: m.l - 4, y: m.t + i * ch + ch - 2, "text-anchor": "end"}, ax, true).textContent = ysv[i];
    });
    [0, Math.floor(xsv.length / 2), xsv.length - 1].forEach(function (i) {
      el("text", {x: m.l + i * cw + cw / 2, y: H - 6, "text-anchor": "middle"}, ax, true).textContent = xsv[i];
    });
    el("p", {"class": "desc"}, box).textContent = "x: " + cols[xi].name + " (" + xsv.length + "), y: " + cols[yi].name + " (" + ysv.length + "), max " + fmt(max, panel.unit);
  }

  function drawTable(panel, box) {
    var cols = panel.data.columns, wrap = el("div", {"class": "tablewrap"}, box), table = el("table", {}, wrap);
    var head = el("tr", {}, el("thead", {}, table)), body = el("tbody", {}, table), order = [], dir = 1;
    for (var r = 0; r < panel.data.rows; r++) { order.push(r); }
    function fill() {
      body.innerHTML = "";
      order.forEach(function (row) {
        var tr = el("tr", {}, body);
        cols.forEach(function (c) {
          var v = c.values[row], td = el("td", {"class": c.kind === "number" ? "num" : ""}, tr);
          td.textContent = c.kind === "time" && v !== null ? fmtTime(v) : c.kind === "number" ? fmt(v, /usd/.test(c.name) ? "currencyUSD" : "none") : (v === null ? "" : v);
          td.title = td.textContent;
        });
      });
    }
    cols.forEach(function (c) {
      var th = el("th", {title: "sort"}, head);
      th.textContent = c.name;
      th.addEventListener("click", function () {
        dir = -dir;
        order.sort(function (a, b) { var x = c.values[a], y = c.values[b]; return (x > y ? 1 : x < y ? -1 : 0) * dir; });
        fill();
      });
    });
    fill();
  }

  function drawStat(panel, box) {
    var c = panel.data.columns[0];
    el("div", {"class": "stat"}, box).textContent = fmt(c && panel.data.rows ? c.values[0] : null, panel.unit);
  }

  var DRAW = {timeseries: drawTimeseries, barchart: function (p, b) { drawBars(p, b, false); },
              piechart: function (p, b) { drawBars(p, b, true); }, heatmap: drawHeatmap, table: drawTable, stat: drawStat};

  var main = document.getElementById("views"), tabs = document.querySelectorAll(".tab");
  DATA.views.forEach(function (view, vi) {
    var sec = el("section", {"class": "view", id: "view-" + vi, "data-uid": view.uid}, main);
    el("h2", {}, sec).textContent = view.title;
    el("p", {"class": "desc"}, sec).textContent = view.description;
    var grid = el("div", {"class": "grid"}, sec);
    view.panels.forEach(function (panel) {
      var box = el("div", {"class": "panel", "data-panel-type": panel.type}, grid);
      box.style.gridColumn = "span " + (panel.type === "table" || panel.type === "heatmap" ? 24 : panel.type === "stat" ? 8 : 12);
      el("h3", {title: panel.description || ""}, box).textContent = panel.title;
      if (!panel.data.rows) {
        el("div", {"class": "empty"}, box).textContent = "no data in this range";
      } else {
        DRAW[panel.type](panel, box);
      }
      box.setAttribute("data-drawn", "1");
      drawn += 1;
    });
  });
  function select(i) {
    tabs.forEach(function (t, k) { t.classList.toggle("active", k === i); t.setAttribute("aria-selected", k === i); });
    document.querySelectorAll(".view").forEach(function (v, k) { v.classList.toggle("active", k === i); });
  }
  tabs.forEach(function (t, k) { t.addEventListener("click", function () { select(k); }); });
  var wanted = Number((location.hash.match(/view=(\d+)/) || [])[1] || 0);
  select(wanted < tabs.length ? wanted : 0);
  if (/all/.test(location.hash)) {  // #all: every view on one page (print, screenshots)
    document.querySelectorAll(".view").forEach(function (v) { v.classList.add("active"); });
  }
  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
