/* coldchain portal: the islands that need a script. Times in the reader's zone, the copy buttons, the board's map
   and live rows, the shipment's chart and route map. Everything else works without it. */
(function () {
  "use strict";

  function pad(n) { return String(n).padStart(2, "0"); }
  function offsetText(date) {
    var minutes = -date.getTimezoneOffset();
    var sign = minutes >= 0 ? "+" : "-";
    minutes = Math.abs(minutes);
    return "UTC" + sign + pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
  }
  function localText(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " +
      pad(date.getHours()) + ":" + pad(date.getMinutes()) + " " + offsetText(date);
  }
  function localiseTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) { el.textContent = localText(date); el.title = date.toISOString(); }
    });
  }

  function copyButtons() {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = document.getElementById(button.dataset.copy).textContent;
        navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; },
          function () { button.textContent = "Select and copy it"; });
      });
    });
  }

  var STATE_COLOURS = { alarm: "#b3261e", at_risk: "#9a5b00", late_data: "#5b4b8a", silent: "#57606a", ok: "#1a7f37" };
  var STATE_WORDS = { alarm: "alarm", at_risk: "at risk", late_data: "late data", silent: "silent", ok: "ok" };

  function baseMap(element, onReady) {
    // No zoom animation: the view is set from data, and a page caught mid-animation draws markers scaled.
    var map = L.map(element, { worldCopyJump: true, zoomAnimation: false, fadeAnimation: false, markerZoomAnimation: false })
      .setView([50, 10], 4);
    var tiles = document.body.dataset.tilesUrl;
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 18, attribution: "map tiles" }).addTo(map);
      onReady(map);
      return map;
    }
    fetch(document.body.dataset.basemapUrl).then(function (r) { return r.json(); }).then(function (topo) {
      var land = topojson.feature(topo, topo.objects.countries);
      L.geoJSON(land, { style: { color: "#8a9aa8", weight: 0.8, fillColor: "#f3f1ea", fillOpacity: 1 }, interactive: false }).addTo(map);
      map.attributionControl.addAttribution("Natural Earth");
      onReady(map);
    }).catch(function () { onReady(map); });
    return map;
  }

  // -- the board --------------------------------------------------------------------------------------------------
  function board() {
    var rows = document.getElementById("board-rows");
    if (!rows) return;
    var status = document.getElementById("live-status");
    var layer = null;
    var map = null;
    function drawMarkers() {
      if (!map) return;
      if (layer) layer.remove();
      layer = L.layerGroup().addTo(map);
      var points = [];
      rows.querySelectorAll("tr[data-lat]").forEach(function (row) {
        var at = [parseFloat(row.dataset.lat), parseFloat(row.dataset.lon)];
        var state = row.dataset.state;
        L.circleMarker(at, { radius: 8, color: "#fff", weight: 2, fillColor: STATE_COLOURS[state], fillOpacity: 1 })
          .bindTooltip(row.dataset.reference + " · " + STATE_WORDS[state], { permanent: true, direction: "right", className: "ship-label" })
          .on("click", function () { window.location = "/portal/shipments/" + row.dataset.shipment; })
          .addTo(layer);
        points.push(at);
      });
      if (points.length) map.fitBounds(points, { padding: [40, 40], maxZoom: 6, animate: false });
    }
    map = baseMap(document.getElementById("board-map"), function (ready) { map = ready; drawMarkers(); });
    function refresh(reason) {
      fetch(rows.dataset.rowsUrl + window.location.search, { credentials: "same-origin" })
        .then(function (r) { if (r.status === 401 || r.redirected) { window.location.reload(); } return r.text(); })
        .then(function (html) {
          rows.innerHTML = html;
          localiseTimes(rows);
          drawMarkers();
          status.textContent = "Live · updated " + localText(new Date()) + (reason ? " (" + reason + ")" : "");
        }).catch(function () { status.textContent = "Live updates paused: the service does not answer"; });
    }
    var source = new EventSource("/v1/events", { withCredentials: true });
    ["alarm.raised", "alarm.acknowledged", "alarm.escalated", "custody.recorded", "eta.at_risk", "tracker.silent"]
      .forEach(function (kind) { source.addEventListener(kind, function () { refresh(kind.replace(".", " ")); }); });
    source.onopen = function () { status.textContent = "Live · connected " + localText(new Date()); };
    source.onerror = function () { status.textContent = "Live · reconnecting…"; };
    // Readings that raise no event still change temperatures and positions: look again every 15 s.
    window.setInterval(function () { refresh(""); }, 15000);
  }

  // -- the shipment -----------------------------------------------------------------------------------------------
  function shipment() {
    var chartBox = document.getElementById("chart");
    if (!chartBox) return;
    var limits = JSON.parse(chartBox.dataset.limits || "[]");
    var excursions = JSON.parse(chartBox.dataset.excursions || "[]");
    var alarms = JSON.parse(chartBox.dataset.alarms || "[]");
    var route = JSON.parse(chartBox.dataset.route || "[]");
    fetch(chartBox.dataset.readingsUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (answer) {
      var buckets = answer.buckets || [];
      drawRoute(route, buckets);
      if (!buckets.length) return;
      chartBox.innerHTML = "";
      var xs = [], lo = [], mean = [], hi = [], humidity = [], pressure = [];
      buckets.forEach(function (b) {
        xs.push(Date.parse(b.start) / 1000); lo.push(b.temperature_min_c); mean.push(b.temperature_mean_c); hi.push(b.temperature_max_c);
        humidity.push(b.humidity_mean_pct); pressure.push(b.pressure_mean_kpa);
      });
      function present(values) { return values.some(function (v) { return v !== null; }); }
      var values = lo.concat(hi).filter(function (v) { return v !== null; });
      limits.forEach(function (l) { values.push(l.threshold); });
      var yMin = Math.min.apply(null, values) - 2, yMax = Math.max.apply(null, values) + 2;
      function shade(u) {
        var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height, left = u.bbox.left, width = u.bbox.width;
        ctx.save();
        ctx.beginPath(); ctx.rect(left, top, width, height); ctx.clip();
        var hatch = document.createElement("canvas"); hatch.width = hatch.height = 8;
        var h = hatch.getContext("2d"); h.strokeStyle = "rgba(179,38,30,0.35)"; h.lineWidth = 2;
        h.beginPath(); h.moveTo(0, 8); h.lineTo(8, 0); h.stroke();
        ctx.fillStyle = ctx.createPattern(hatch, "repeat");
        limits.forEach(function (l) {
          var y = u.valToPos(l.threshold, "y", true);
          if (l.direction === "above") ctx.fillRect(left, top, width, y - top);
          else ctx.fillRect(left, y, width, top + height - y);
        });
        ctx.fillStyle = "rgba(230,120,0,0.28)";
        var shaded = 0;
        excursions.forEach(function (x) {
          var a = u.valToPos(x.start, "x", true), b = u.valToPos(x.end, "x", true);
          if (b < left || a > left + width) return;
          ctx.fillRect(a, top, Math.max(b - a, 2), height);
          ctx.fillStyle = "#8a4b00"; ctx.font = "12px sans-serif";
          ctx.fillText("excursion " + x.rule, Math.max(a, left) + 4, top + height - 6);
          ctx.fillStyle = "rgba(230,120,0,0.28)";
          shaded += 1;
        });
        chartBox.dataset.shadedExcursions = String(shaded);
        alarms.forEach(function (a) {
          var x = u.valToPos(a.at, "x", true);
          ctx.strokeStyle = a.late ? "#5b4b8a" : "#b3261e"; ctx.lineWidth = 2;
          ctx.setLineDash(a.late ? [6, 4] : []);
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = ctx.strokeStyle; ctx.font = "12px sans-serif";
          ctx.fillText((a.late ? "late alarm " : "alarm ") + a.rule, x + 4, top + 14);
        });
        ctx.restore();
      }
      var opts = {
        width: chartBox.clientWidth - 10, height: 320,
        scales: { x: { time: true }, y: { range: [yMin, yMax] } },
        axes: [{ values: [[86400, "{YYYY}-{MM}-{DD}", null, null], [3600, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null], [60, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null], [1, "{HH}:{mm}:{ss}", "\n{YYYY}-{MM}-{DD}", null]] }, { label: "°C" }],
        series: [
          { value: function (u, v) { return v === null ? "—" : localText(new Date(v * 1000)); } },
          { label: "min °C", stroke: "rgba(11,92,173,0.4)", width: 1 },
          { label: "mean °C", stroke: "#0b5cad", width: 2 },
          { label: "max °C", stroke: "rgba(11,92,173,0.4)", width: 1 }
        ],
        bands: [{ series: [3, 1], fill: "rgba(11,92,173,0.12)" }],
        hooks: { drawClear: [shade] },
        cursor: { drag: { x: true, y: false } }
      };
      var data = [xs, lo, mean, hi];
      // Humidity and pressure, when the trackers measured them, on axes of their own (right-hand side).
      if (present(humidity)) {
        opts.scales["%"] = { range: [0, 100] };
        opts.axes.push({ scale: "%", side: 1, label: "% RH", grid: { show: false } });
        opts.series.push({ label: "humidity %", scale: "%", stroke: "#2e8b57", width: 1, dash: [4, 4] });
        data.push(humidity);
      }
      if (present(pressure)) {
        opts.scales.kPa = { auto: true };
        opts.axes.push({ scale: "kPa", side: 1, label: "kPa", grid: { show: false } });
        opts.series.push({ label: "pressure kPa", scale: "kPa", stroke: "#7a5c00", width: 1, dash: [2, 3] });
        data.push(pressure);
      }
      var plot = new uPlot(opts, data, chartBox);
      chartBox.dataset.drawn = "true";
      chartBox.addEventListener("dblclick", function () { plot.setScale("x", { min: xs[0], max: xs[xs.length - 1] }); });
      window.addEventListener("resize", function () { plot.setSize({ width: chartBox.clientWidth - 10, height: 320 }); });
    });
  }

  function drawRoute(route, buckets) {
    var element = document.getElementById("route-map");
    if (!element) return;
    baseMap(element, function (map) {
      var planned = L.polyline(route, { color: "#57606a", weight: 2, dashArray: "6 6" }).addTo(map);
      var track = buckets.filter(function (b) { return b.latitude !== null; }).map(function (b) { return [b.latitude, b.longitude]; });
      L.circleMarker(route[0], { radius: 6, color: "#0d2238" }).bindTooltip("origin").addTo(map);
      L.circleMarker(route[route.length - 1], { radius: 6, color: "#0d2238" }).bindTooltip("destination").addTo(map);
      if (track.length) {
        L.polyline(track, { color: "#0b5cad", weight: 3 }).addTo(map);
        L.circleMarker(track[track.length - 1], { radius: 8, fillColor: "#0b5cad", fillOpacity: 1, color: "#fff" })
          .bindTooltip("last position", { permanent: true, direction: "right" }).addTo(map);
      }
      map.fitBounds(planned.getBounds().extend(track.length ? L.latLngBounds(track) : planned.getBounds()), { padding: [20, 20], animate: false });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localiseTimes(document);
    copyButtons();
    board();
    shipment();
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
