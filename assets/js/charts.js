// report.html's interactive charts: every <script class="chart-spec"> (JSON written by
// src/report/charts.rs, the same data as the static SVG beside it) becomes a Chart.js chart with
// hover values, legend toggling (click an entry), zoom (mouse wheel, or drag a box with Shift
// held) and reset (double click). Without JavaScript the static SVG stays.
(function () {
  if (!window.Chart) return;
  if (window.ChartZoom) Chart.register(window.ChartZoom);
  const fmt = (v) => {
    const a = Math.abs(v);
    if (Number.isInteger(v) && a < 1e4) return String(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 10 || v === 0) return v.toFixed(1);
    return v.toPrecision(3);
  };
  const axis = (a) => ({
    type: a.log ? 'logarithmic' : 'linear',
    title: { display: true, text: a.label + (a.log ? ' (log scale)' : '') },
    ticks: { callback: (v) => fmt(Number(v)) },
  });
  const charts = [];
  document.querySelectorAll('script.chart-spec').forEach((el) => {
    const s = JSON.parse(el.textContent);
    const figure = el.closest('figure');
    const box = document.createElement('div');
    box.className = 'ichart';
    const canvas = document.createElement('canvas');
    box.appendChild(canvas);
    figure.insertBefore(box, figure.firstChild);
    const datasets = s.series.map((x) => ({
      label: x.label,
      data: x.points.map((p) => ({ x: p[0], y: p[1] })),
      borderColor: x.color,
      backgroundColor: x.color,
      showLine: !s.points_only,
      // A sweep's few points are its data: mark them (a loss curve's many are not).
      pointRadius: s.points_only ? 5 : x.points.length <= 12 ? 4 : 0,
      pointHoverRadius: 6,
      borderWidth: 2,
    }));
    if (s.front.length > 1) {
      datasets.push({
        label: s.front_label || 'Pareto front',
        data: s.front.map((p) => ({ x: p[0], y: p[1] })),
        borderColor: '#000',
        backgroundColor: '#000',
        showLine: true,
        pointRadius: 0,
        borderWidth: 1,
      });
    }
    const chart = new Chart(canvas, {
      type: 'scatter',
      data: { datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'nearest', intersect: false },
        scales: { x: axis(s.x), y: axis(s.y) },
        plugins: {
          title: { display: true, text: s.title, font: { size: 15 } },
          legend: { position: 'right' },
          tooltip: {
            callbacks: {
              label: (c) => `${c.dataset.label}: ${s.x.label} ${fmt(c.parsed.x)}, ${s.y.label} ${fmt(c.parsed.y)}`,
            },
          },
          zoom: {
            zoom: { wheel: { enabled: true }, drag: { enabled: true, modifierKey: 'shift' }, mode: 'xy' },
          },
        },
      },
    });
    canvas.addEventListener('dblclick', () => chart.resetZoom && chart.resetZoom());
    const fallback = figure.querySelector('.static');
    if (fallback) fallback.hidden = true;
    charts.push(chart);
  });
  // `report.html#selftest`: hover the first point of the first chart as a mouse would and write
  // what the tooltip says into the page (the browser test reads it with --dump-dom).
  if (location.hash === '#selftest' && charts.length) {
    const chart = charts[0];
    const point = chart.getDatasetMeta(0).data[0];
    const rect = chart.canvas.getBoundingClientRect();
    chart.canvas.dispatchEvent(
      new MouseEvent('mousemove', { clientX: rect.left + point.x, clientY: rect.top + point.y, bubbles: true }),
    );
    setTimeout(() => {
      const body = (chart.tooltip.body || []).flatMap((b) => b.lines);
      const out = document.createElement('pre');
      out.id = 'selftest';
      out.textContent = `charts: ${charts.length}\nhover: ${body.join(' | ')}`;
      document.body.appendChild(out);
    }, 200);
  }
})();
