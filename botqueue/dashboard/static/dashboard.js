// botqueue dashboard: refreshes the overview from /api/overview without reloading, and draws
// the two charts as SVG polylines (the same drawing as botqueue/dashboard/chart.py). No library.
"use strict";

(function () {
  var WIDTH = 600, HEIGHT = 160, PAD = 4;

  function age(seconds) {
    var s = Math.floor(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function number(n) { return Number(n).toLocaleString("en-US"); }

  function clock(epoch) {
    return new Date(epoch * 1000).toISOString().slice(11, 19) + " UTC";
  }

  function setFigure(id, text, alarm) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = text;
    el.setAttribute("data-state", alarm ? "alarm" : "ok");
  }

  function draw(id, maxId, history, column, digits) {
    var svg = document.getElementById(id);
    if (!svg) return;
    var values = [];
    history.forEach(function (row) {
      if (row[column] !== null && row[column] !== undefined) values.push([row[0], row[column]]);
    });
    var line = svg.querySelector("polyline");
    var top = 0;
    values.forEach(function (v) { if (v[1] > top) top = v[1]; });
    var points = "";
    if (values.length) {
      var first = values[0][0], span = (values[values.length - 1][0] - first) || 1, scale = top || 1;
      points = values.map(function (v) {
        var x = PAD + (v[0] - first) / span * (WIDTH - 2 * PAD);
        var y = HEIGHT - PAD - v[1] / scale * (HEIGHT - 2 * PAD);
        return x.toFixed(1) + "," + y.toFixed(1);
      }).join(" ");
    }
    line.setAttribute("points", points);
    svg.setAttribute("data-points", String(values.length));
    var max = document.getElementById(maxId);
    if (max) max.textContent = top.toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  function workers(rows) {
    var table = document.getElementById("worker-figures");
    if (!table) return;
    var body = table.querySelector("tbody");
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      [row.label, number(Math.round(row.value)),
       row.rate === null ? "" : row.rate.toLocaleString("en-US", { maximumFractionDigits: 1 })]
        .forEach(function (text) {
          var td = document.createElement("td");
          td.textContent = text;  // text, never markup
          tr.appendChild(td);
        });
      body.appendChild(tr);
    });
  }

  function update(data) {
    var s = data.stats, a = data.alarms;
    if (s) {
      setFigure("visible", number(s.visible), a.visible);
      setFigure("in-flight", number(s.in_flight), a.in_flight);
      setFigure("dead-letters", number(s.dead_letters), a.dead_letters);
      setFigure("oldest-age", age(s.oldest_age_seconds), a.oldest_age);
    }
    var banner = document.getElementById("error-banner");
    if (data.error) {
      banner.textContent = "Queue unreachable: " + data.error;
      banner.hidden = false;
    } else {
      banner.textContent = "";
      banner.hidden = true;
    }
    var bot = document.getElementById("bot-state");
    if (bot) bot.textContent = data.bot || "unknown";
    draw("chart-depth", "depth-max", data.history, 1, 0);
    draw("chart-rate", "rate-max", data.history, 2, 1);
    workers(data.workers || []);
    var updated = document.getElementById("updated-at");
    if (updated && data.updated_at) {
      updated.textContent = clock(data.updated_at);
      updated.setAttribute("data-epoch", String(data.updated_at));
    }
  }

  function poll(every) {
    fetch("/api/overview", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("dashboard answered " + r.status);
        return r.json();
      })
      .then(update)
      .catch(function (error) {
        var banner = document.getElementById("error-banner");
        banner.textContent = "Dashboard unreachable: " + error.message;
        banner.hidden = false;
      })
      .then(function () { window.setTimeout(function () { poll(every); }, every); });
  }

  function selectAll() {
    var all = document.getElementById("select-all");
    if (!all) return;
    all.addEventListener("change", function () {
      document.querySelectorAll("input.select").forEach(function (box) { box.checked = all.checked; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    selectAll();
    if (document.body.getAttribute("data-page") === "overview") {
      var every = parseFloat(document.body.getAttribute("data-refresh")) * 1000 || 5000;
      window.setTimeout(function () { poll(every); }, every);
    }
  });
})();
