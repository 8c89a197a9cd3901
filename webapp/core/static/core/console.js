// The overview's charts (uPlot, served from our own static files): the series view's JSON,
// fetched every 2 s and redrawn in place.
(function () {
  "use strict";
  var box = document.getElementById("charts");
  if (!box || typeof uPlot === "undefined") return;
  var url = box.dataset.url + "?window=" + encodeURIComponent(box.dataset.window || "1h");
  var axis = { stroke: "#8a939b", grid: { stroke: "#27313b" }, ticks: { stroke: "#27313b" } };
  function opts(el, series) {
    return {
      width: Math.max(320, el.clientWidth || 380), height: 200,
      scales: { x: { time: true } },
      axes: [axis, Object.assign({ size: 60 }, axis)],
      series: [{}].concat(series),
    };
  }
  // points too: a bucket alone between empty ones (one decision in a minute) still shows
  function line(label, color) {
    return { label: label, stroke: color, width: 2, spanGaps: true, points: { show: true, size: 4, fill: color } };
  }
  var charts = {};
  function draw(id, series, data) {
    var el = document.getElementById(id);
    if (!el) return;
    if (!charts[id]) {
      charts[id] = new uPlot(opts(el.parentNode, series), data, el);
    } else {
      charts[id].setData(data);
    }
  }
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (s) {
        draw("chart-pnl", [line("PnL (native)", "#56d364")], [s.t, s.pnl_native]);
        draw("chart-ops", [line("opportunities/s", "#9ecbff")], [s.t, s.opportunities_per_s]);
        draw("chart-latency", [line("p50", "#56d364"), line("p95", "#d29922"), line("p99", "#f85149")],
             [s.t, s.p50, s.p95, s.p99]);
        var src = document.getElementById("chart-source");
        if (src) src.textContent = "last " + s.window + ", " + s.bucket_s + " s buckets, from the " + s.source;
        box.dataset.updated = String(Date.now());
      })
      .catch(function () { /* the next tick tries again */ });
  }
  refresh();
  setInterval(refresh, 2000);
})();
