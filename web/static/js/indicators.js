// Charts of the quality indicators page (/admin/indicators) with Chart.js (web/static/vendor/chartjs, from npm).
// The figures come from the page's <script type="application/json" id="indicators-data"> block; the tables beside
// each chart carry the same numbers. No inline script or style: the page's CSP allows scripts from this site only.
(function () {
  'use strict';
  const source = document.getElementById('indicators-data');
  if (!source || typeof window.Chart === 'undefined') return;
  const data = JSON.parse(source.textContent);
  const Chart = window.Chart;
  const colours = { vital: '#b02a37', urgent: '#fd7e14', scheduled: '#0d6efd' };
  const levels = data.order; // vital, urgent, scheduled (the JSON block's object keys come sorted)
  const percent = (value) => (value === null || value === undefined ? null : Math.round(value * 1000) / 10);
  Chart.defaults.locale = 'fr-FR';
  Chart.defaults.animation = false;

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) canvas.chart = new Chart(canvas, config);
  }

  draw('chart-within', {
    type: 'bar',
    data: {
      labels: levels.map((level) => data.levels[level]),
      datasets: [{
        label: data.labels.within,
        data: levels.map((level) => percent(data.within[level])),
        backgroundColor: levels.map((level) => colours[level]),
      }],
    },
    options: { scales: { y: { min: 0, max: 100, title: { display: true, text: '%' } } },
      plugins: { legend: { display: false } } },
  });

  draw('chart-distribution', {
    type: 'bar',
    data: {
      labels: data.buckets,
      datasets: levels.map((level) => ({
        label: data.levels[level], data: data.distribution[level], backgroundColor: colours[level],
      })),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });

  draw('chart-weekly', {
    type: 'bar',
    data: {
      labels: data.weeks,
      datasets: [
        { type: 'bar', label: data.labels.requests, data: data.weekly_requests, backgroundColor: '#6c757d',
          yAxisID: 'y' },
        { type: 'line', label: data.labels.within, data: data.weekly_within.map(percent), borderColor: '#198754',
          backgroundColor: '#198754', spanGaps: true, yAxisID: 'share' },
      ],
    },
    options: {
      scales: {
        y: { beginAtZero: true, ticks: { precision: 0 }, position: 'left' },
        share: { min: 0, max: 100, position: 'right', grid: { drawOnChartArea: false } },
      },
    },
  });
}());
