// Draws the overview's charts from the figures the server put in #chart-data (plotly.js, served by the app).
(function () {
  "use strict";
  var data = document.getElementById("chart-data");
  if (!data || typeof Plotly === "undefined") { return; }
  var figures = JSON.parse(data.textContent || "{}");
  Object.keys(figures).forEach(function (id) {
    var el = document.getElementById(id);
    if (!el) { return; }
    Plotly.newPlot(el, figures[id].data, figures[id].layout, { displayModeBar: false, responsive: true });
  });
})();
