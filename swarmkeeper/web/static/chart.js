// Small SVG charts for the farm view, drawn by hand (no library, nothing from a CDN). Each chart
// is one <svg> with role="img" and a label that says in words what it shows.

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes = {}) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/**
 * Bars of `values` (oldest first), scaled to the largest, optionally with `line` (same length)
 * drawn over them on its own scale. The viewBox scales with the page (phone width too).
 */
export function barChart(values, {label, line = null, width = 300, height = 60, className = ''} = {}) {
  const chart = svg('svg', {viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img',
    class: `chart ${className}`.trim(), 'aria-label': label});
  chart.append(svg('title'));
  chart.firstChild.textContent = label;
  const top = Math.max(1, ...values);
  const step = width / Math.max(1, values.length);
  values.forEach((value, index) => {
    if (!value) return;
    const barHeight = Math.max(1, (value / top) * (height - 2));
    chart.append(svg('rect', {x: index * step + step * 0.1, y: height - barHeight, width: step * 0.8,
      height: barHeight, class: 'bar', 'data-value': value}));
  });
  if (line) chart.append(polyline(line, step, height));
  chart.dataset.total = String(values.reduce((sum, value) => sum + value, 0));
  chart.dataset.bars = String(values.filter(Boolean).length);
  return chart;
}

function polyline(values, step, height) {
  const top = Math.max(1, ...values);
  const points = values.map((value, index) => `${(index + 0.5) * step},${height - 1 - (value / top) * (height - 2)}`);
  return svg('polyline', {points: points.join(' '), class: 'line', fill: 'none', 'data-max': Math.max(0, ...values)});
}

/** A horizontal meter: `used` of `total`, with its text beside it (for VRAM). */
export function meter(used, total, text) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const chart = svg('svg', {viewBox: '0 0 100 8', preserveAspectRatio: 'none', role: 'img', class: 'meter',
    'aria-label': text});
  chart.append(svg('rect', {x: 0, y: 0, width: 100, height: 8, class: 'meter-back'}));
  chart.append(svg('rect', {x: 0, y: 0, width: share * 100, height: 8, class: 'meter-fill'}));
  return chart;
}
