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
  // Error bars (± one standard deviation over seeds), drawn under the points.
  const errorBars = {
    id: 'errorBars',
    beforeDatasetsDraw(chart) {
      const { ctx, scales } = chart;
      chart.data.datasets.forEach((d, i) => {
        if (!chart.isDatasetVisible(i)) return;
        ctx.save();
        const area = chart.chartArea;
        ctx.beginPath();
        ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
        ctx.clip();
        ctx.strokeStyle = d.borderColor;
        ctx.lineWidth = 1;
        d.data.forEach((p) => {
          const line = (x0, y0, x1, y1) => {
            const a = [scales.x.getPixelForValue(x0), scales.y.getPixelForValue(y0)];
            const b = [scales.x.getPixelForValue(x1), scales.y.getPixelForValue(y1)];
            if (![...a, ...b].every(Number.isFinite)) return;
            ctx.beginPath();
            ctx.moveTo(a[0], a[1]);
            ctx.lineTo(b[0], b[1]);
            ctx.stroke();
          };
          if (p.sx > 0) line(p.x - p.sx, p.y, p.x + p.sx, p.y);
          if (p.sy > 0) line(p.x, p.y - p.sy, p.x, p.y + p.sy);
        });
        ctx.restore();
      });
    },
  };
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
      data: x.points.map((p) => ({ x: p[0], y: p[1], sx: p[2] || 0, sy: p[3] || 0 })),
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
    // The axes take in the error bars' ends too.
    const scales = { x: axis(s.x), y: axis(s.y) };
    for (const [k, lo, hi] of [['x', (p) => p.x - p.sx, (p) => p.x + p.sx], ['y', (p) => p.y - p.sy, (p) => p.y + p.sy]]) {
      const ends = datasets.flatMap((d) => d.data.flatMap((p) => [lo(p), hi(p)]));
      const usable = ends.filter((v) => Number.isFinite(v) && (!s[k].log || v > 0));
      if (usable.length) {
        scales[k].suggestedMin = Math.min(...usable);
        scales[k].suggestedMax = Math.max(...usable);
      }
    }
    const chart = new Chart(canvas, {
      type: 'scatter',
      data: { datasets },
      plugins: [errorBars],
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'nearest', intersect: false },
        scales,
        plugins: {
          title: { display: true, text: s.title, font: { size: 15 } },
          legend: { position: 'right' },
          tooltip: {
            callbacks: {
              label: (c) => {
                const p = c.raw;
                const sx = p.sx > 0 ? ` ± ${fmt(p.sx)}` : '';
                const sy = p.sy > 0 ? ` ± ${fmt(p.sy)}` : '';
                return `${c.dataset.label}: ${s.x.label} ${fmt(c.parsed.x)}${sx}, ${s.y.label} ${fmt(c.parsed.y)}${sy}`;
              },
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
