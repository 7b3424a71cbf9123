// FunnelPulse dashboard: draws the charts from the /api/ endpoints (Chart.js),
// the drill-downs (a brand, an anomaly) and the live stream page.
// Marks for tests: <html data-charts="N" data-ready="1">, data-error on a script error.
(function () {
  'use strict';
  const root = document.documentElement;
  window.addEventListener('error', (e) => { root.dataset.error = String(e.message); });
  window.addEventListener('unhandledrejection', (e) => { root.dataset.error = String(e.reason); });

  const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
  const count = new Intl.NumberFormat('en-US');
  const charts = {};

  async function getJson(url) {
    const response = await fetch(url);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  // Conversion (line), views (bars) and anomaly markers (red triangles) of a series;
  // `mark` is a point to mark too (the anomaly clicked).
  function draw(canvas, series, mark) {
    const labels = series.points.map((p) => p.key);
    const conversion = series.points.map((p) => (p.view_to_purchase == null ? null : 100 * p.view_to_purchase));
    const flagged = new Map();
    for (const a of series.anomalies) {
      if (!flagged.has(a.at)) flagged.set(a.at, []);
      flagged.get(a.at).push(a.detector + ' ' + a.kind + ': ' + a.brand);
    }
    const markers = labels.map((l, i) => (flagged.has(l) || l === mark ? conversion[i] : null));
    if (charts[canvas.id]) charts[canvas.id].destroy();
    charts[canvas.id] = new Chart(canvas, {
      data: {
        labels,
        datasets: [
          { type: 'line', label: 'view → purchase %', data: conversion, borderColor: '#1e3a8a', pointRadius: 0, borderWidth: 1.5, yAxisID: 'y' },
          { type: 'line', label: 'anomaly', data: markers, showLine: false, pointStyle: 'triangle', pointRadius: 7, backgroundColor: '#dc2626', borderColor: '#dc2626', yAxisID: 'y' },
          { type: 'bar', label: 'views', data: series.points.map((p) => p.views), backgroundColor: 'rgba(100,116,139,0.25)', yAxisID: 'views' },
        ],
      },
      options: {
        animation: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          y: { title: { display: true, text: 'view → purchase %' }, beginAtZero: true },
          views: { position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'views' } },
          // Hours as `2019-10-22 13:00`, days as they are.
          x: { ticks: { maxTicksLimit: 14, callback: function (value) { return this.getLabelForValue(value).replace('T', ' ').slice(0, 16); } } },
        },
        plugins: {
          tooltip: {
            callbacks: {
              footer: (items) => {
                const i = items[0].dataIndex;
                const p = series.points[i];
                const lines = ['purchases ' + count.format(p.purchases) + ' · revenue ' + money.format(p.revenue)];
                return lines.concat(flagged.get(labels[i]) || []);
              },
            },
          },
        },
      },
    });
  }

  function showError(element, error) {
    const p = document.createElement('p');
    p.className = 'note';
    p.textContent = 'Could not load the chart: ' + error.message;
    element.after(p);
  }

  async function initialCharts() {
    let drawn = 0;
    for (const canvas of document.querySelectorAll('canvas[data-series]')) {
      try {
        draw(canvas, await getJson(canvas.dataset.series));
        drawn += 1;
      } catch (error) {
        showError(canvas, error);
      }
    }
    return drawn;
  }

  // A brand link or an anomaly row draws its series in the drill-down chart.
  async function drill(element) {
    const canvas = document.getElementById('drill-chart');
    document.getElementById('drill-title').textContent = element.dataset.name + (element.dataset.at ? ' around ' + element.dataset.at.replace('T', ' ') : ': hourly series');
    document.querySelectorAll('.picked').forEach((e) => e.classList.remove('picked'));
    element.closest('tr').classList.add('picked');
    try {
      draw(canvas, await getJson(element.dataset.series), element.dataset.at);
      root.dataset.drilled = element.dataset.name;
    } catch (error) {
      showError(canvas, error);
    }
  }

  for (const element of document.querySelectorAll('a.drill[data-series], tr.pick[data-series]')) {
    element.addEventListener('click', (event) => {
      event.preventDefault();
      drill(element);
    });
  }

  // Stream page: poll the stream's state every second.
  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text;
    row.appendChild(td);
  }

  function fill(tableId, rows, cells) {
    const body = document.querySelector('#' + tableId + ' tbody');
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement('tr');
      for (const text of cells(r)) cell(tr, text);
      body.appendChild(tr);
    }
  }

  function showStream(s) {
    const values = {
      batches: count.format(s.batches),
      watermark: s.watermark || '–',
      rows_per_second: s.rows_per_second == null ? '–' : count.format(Math.round(s.rows_per_second)),  // newest batch with rows
      input_rows: count.format(s.input_rows),
      late_rows: count.format(s.late_rows),
      dead_letters: count.format(s.dead_letters),
      quarantined: count.format(s.quarantined.length),
      emitted_windows: count.format(s.emitted_windows),
      waiting: s.waiting,
      checkpoint: s.checkpoint,
      source: s.source,
    };
    for (const element of document.querySelectorAll('[data-field]')) {
      const value = values[element.dataset.field];
      if (value !== undefined) element.textContent = value;
    }
    document.getElementById('stream-message').textContent = s.message || '';
    fill('recent', s.recent, (b) => [b.batch_id, b.committed, count.format(b.input_rows), b.late_rows, b.emitted_windows, Math.round(b.rows_per_second), b.watermark || '–']);
    fill('windows', s.windows, (w) => [w.window_start, w.brand == null ? '(none)' : w.brand, count.format(w.views), count.format(w.carts), count.format(w.purchases), money.format(w.revenue)]);
    fill('quarantined', s.quarantined, (q) => q);
    root.dataset.batches = String(s.batches);
  }

  const stream = document.getElementById('stream');
  if (stream) {
    setInterval(() => getJson(stream.dataset.poll).then(showStream).catch(() => {}), 1000);
  }

  // A link may name a drill-down to open (#drill=BRAND): shareable, and what the tests load.
  async function drillFromHash() {
    const match = /^#drill=(.+)$/.exec(window.location.hash);
    if (!match) return;
    const name = decodeURIComponent(match[1]);
    const element = [...document.querySelectorAll('[data-series][data-name]')].find((e) => e.dataset.name === name);
    if (element) await drill(element);
  }

  initialCharts()
    .then(async (drawn) => {
      await drillFromHash();
      root.dataset.charts = String(drawn);
    })
    .finally(() => { root.dataset.ready = '1'; });
})();
