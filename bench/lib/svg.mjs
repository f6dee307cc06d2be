// Hand-written SVG charts for the bench results: self-contained files that any browser opens
// with nothing else installed (no scripts, no external fonts or styles).

export const esc = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (x) => (Math.round(x * 10) / 10).toString();
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

function frame(width, height, body) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">
<rect width="${width}" height="${height}" fill="#ffffff"/>
${body}
</svg>
`;
}

function textLines(x, y, lines, attrs = '') {
  return lines.map((l, i) => `<text x="${f(x)}" y="${f(y + i * 15)}" ${attrs}>${esc(l)}</text>`).join('\n');
}

/** "200 MiB", "5,000 MiB" for a value in MiB. */
export function mibLabel(v) {
  return `${Math.round(v) === v ? v.toLocaleString('en-US') : f(v)} MiB`;
}

/**
 * Line chart, linear x, logarithmic y.
 * series: [{label, color, dash?, width?, marker?, points: [[x, y], ...]}]
 */
export function logLineChart({
  title,
  subtitle = [],
  xLabel,
  yLabel,
  xTicks,
  yTicks,
  yFormat,
  series,
  notes = [],
}) {
  const W = 1040;
  const H = 600;
  const m = { left: 96, right: 330, top: 40 + subtitle.length * 15 + 10, bottom: 60 + notes.length * 15 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xMin = Math.min(...xTicks);
  const xMax = Math.max(...xTicks);
  const yMin = Math.min(...yTicks);
  const yMax = Math.max(...yTicks);
  const X = (x) => m.left + ((x - xMin) / (xMax - xMin)) * pw;
  const Y = (y) =>
    m.top +
    ph -
    ((Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const out = [];
  out.push(`<text x="${m.left}" y="24" font-size="17" font-weight="600">${esc(title)}</text>`);
  out.push(textLines(m.left, 44, subtitle, 'fill="#444"'));
  out.push(`<g stroke="#e3e3e3" stroke-width="1">`);
  for (const t of yTicks)
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${f(Y(t))}" y2="${f(Y(t))}"/>`);
  for (const t of xTicks)
    out.push(`<line x1="${f(X(t))}" x2="${f(X(t))}" y1="${m.top}" y2="${m.top + ph}"/>`);
  out.push('</g>');
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (const t of yTicks)
    out.push(
      `<text x="${m.left - 6}" y="${f(Y(t) + 4)}" text-anchor="end" fill="#333">${esc(yFormat(t))}</text>`,
    );
  for (const t of xTicks)
    out.push(`<text x="${f(X(t))}" y="${m.top + ph + 18}" text-anchor="middle" fill="#333">${t}</text>`);
  out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 38}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const pts = s.points.filter(([, y]) => Number.isFinite(y) && y > 0);
    const d = pts.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${f(X(x))} ${f(Y(y))}`).join(' ');
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}"${dash}/>`);
    if (s.marker !== false)
      for (const [x, y] of pts)
        out.push(
          `<circle cx="${f(X(x))}" cy="${f(Y(y))}" r="3.5" fill="${s.color}"><title>${esc(`${s.label}: N=${x}, ${yFormat(y)}`)}</title></circle>`,
        );
    const ly = m.top + 8 + i * 22;
    const lx = m.left + pw + 20;
    out.push(
      `<line x1="${lx}" x2="${lx + 34}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="${s.width ?? 2}"${dash}/>`,
    );
    out.push(`<text x="${lx + 42}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  out.push(textLines(m.left, H - notes.length * 15 + 2, notes, 'fill="#555" font-size="11"'));
  return frame(W, H, out.join('\n'));
}

/**
 * Grouped bar charts side by side, one panel per measure, sharing a legend.
 * panels: [{title, groups: [{label, values: [number|null]}]}]; bars: [{label, color}] (one per
 * value index; a string value, such as "pending" or "failed", is drawn as that word instead of a bar).
 */
export function groupedBarPanels({ title, subtitle = [], yLabel, bars, panels, valueFormat, notes = [] }) {
  const W = 1040;
  const H = 560;
  const legendY = 44 + subtitle.length * 15 + 8;
  const titleY = legendY + 30;
  const m = { left: 70, right: 20, top: titleY + 16, bottom: 50 + notes.length * 15 };
  const gap = 50;
  const pw = (W - m.left - m.right - gap * (panels.length - 1)) / panels.length;
  const ph = H - m.top - m.bottom;
  const out = [];
  out.push(`<text x="${m.left}" y="24" font-size="17" font-weight="600">${esc(title)}</text>`);
  out.push(textLines(m.left, 44, subtitle, 'fill="#444"'));
  let lx = m.left;
  for (const b of bars) {
    out.push(`<rect x="${lx}" y="${legendY - 10}" width="12" height="12" fill="${b.color}"/>`);
    out.push(`<text x="${lx + 17}" y="${legendY}">${esc(b.label)}</text>`);
    lx += 34 + b.label.length * 7;
  }
  panels.forEach((p, pi) => {
    // Each panel has its own scale: p99 can be ten times p50.
    const max = Math.max(1e-9, ...p.groups.flatMap((g) => g.values.filter((v) => typeof v === 'number')));
    const step = niceStep(max / 5);
    const yMax = Math.ceil(max / step) * step;
    const x0 = m.left + pi * (pw + gap);
    const Y = (v) => m.top + ph - (v / yMax) * ph;
    out.push(
      `<text x="${f(x0 + pw / 2)}" y="${titleY}" text-anchor="middle" font-weight="600">${esc(p.title)}</text>`,
    );
    for (let t = 0; t <= yMax + step / 2; t += step) {
      out.push(`<line x1="${f(x0)}" x2="${f(x0 + pw)}" y1="${f(Y(t))}" y2="${f(Y(t))}" stroke="#e3e3e3"/>`);
      out.push(
        `<text x="${f(x0 - 5)}" y="${f(Y(t) + 4)}" text-anchor="end" fill="#333" font-size="11">${esc(valueFormat(t))}</text>`,
      );
    }
    out.push(`<line x1="${f(x0)}" x2="${f(x0 + pw)}" y1="${f(Y(0))}" y2="${f(Y(0))}" stroke="#888"/>`);
    const gw = pw / p.groups.length;
    const bw = Math.min(26, (gw - 14) / bars.length);
    p.groups.forEach((g, gi) => {
      const gx = x0 + gi * gw + (gw - bw * bars.length) / 2;
      g.values.forEach((v, bi) => {
        const bx = gx + bi * bw;
        const color = bars[bi]?.color ?? '#999';
        if (typeof v !== 'number') {
          out.push(
            `<text transform="translate(${f(bx + bw / 2 + 3)} ${f(Y(0) - 4)}) rotate(-90)" fill="#999" font-size="10">${esc(v ?? 'pending')}</text>`,
          );
          return;
        }
        out.push(
          `<rect x="${f(bx + 1)}" y="${f(Y(v))}" width="${f(bw - 2)}" height="${f(Y(0) - Y(v))}" fill="${color}"><title>${esc(`${bars[bi]?.label}, ${g.label}: ${valueFormat(v)}`)}</title></rect>`,
        );
      });
      out.push(
        `<text x="${f(x0 + gi * gw + gw / 2)}" y="${f(Y(0) + 16)}" text-anchor="middle" fill="#333">${esc(g.label)}</text>`,
      );
    });
  });
  out.push(
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  out.push(textLines(m.left, H - notes.length * 15 + 2, notes, 'fill="#555" font-size="11"'));
  return frame(W, H, out.join('\n'));
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= raw) return k * p;
  return 10 * p;
}
