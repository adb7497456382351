// Events and attempts over time as inline SVG bars: succeeded stacked under failed attempts, with
// the events accepted as a line. Colours come from app.css classes (light and dark).
import type { Stats } from "../api.ts";
import { localTime } from "../format.ts";

const WIDTH = 720;
const HEIGHT = 180;
const PAD = { top: 10, right: 8, bottom: 22, left: 36 };

export function StatsChart({ stats, label }: { stats: Stats; label: string }) {
  const series = stats.series;
  const top = Math.max(1, ...series.map((b) => Math.max(b.succeeded + b.failed, b.events)));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const step = series.length > 0 ? innerW / series.length : innerW;
  const y = (value: number) => PAD.top + innerH - (value / top) * innerH;
  const line = series
    .map(
      (b, i) => `${i === 0 ? "M" : "L"}${(PAD.left + step * (i + 0.5)).toFixed(1)},${y(b.events).toFixed(1)}`,
    )
    .join(" ");
  const t = stats.totals;
  const summary = `${label}: ${t.events} events, ${t.succeeded} attempts succeeded and ${t.failed} failed between ${localTime(stats.since)} and ${localTime(stats.until)}`;
  const first = series[0];
  const last = series[series.length - 1];
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary}>
        <title>{summary}</title>
        <line class="axis" x1={PAD.left} x2={WIDTH - PAD.right} y1={PAD.top + innerH} y2={PAD.top + innerH} />
        <text class="tick" x={PAD.left - 4} y={PAD.top + 8} text-anchor="end">
          {top}
        </text>
        <text class="tick" x={PAD.left - 4} y={PAD.top + innerH} text-anchor="end">
          0
        </text>
        {series.map((b, i) => {
          const x = PAD.left + step * i + step * 0.1;
          const w = Math.max(1, step * 0.8);
          return (
            <g key={b.start}>
              <rect
                class="bar-ok"
                x={x}
                width={w}
                y={y(b.succeeded)}
                height={PAD.top + innerH - y(b.succeeded)}
              />
              <rect
                class="bar-fail"
                x={x}
                width={w}
                y={y(b.succeeded + b.failed)}
                height={y(b.succeeded) - y(b.succeeded + b.failed)}
              />
            </g>
          );
        })}
        {series.length > 0 && <path class="line-events" d={line} />}
        {first && (
          <text class="tick" x={PAD.left} y={HEIGHT - 6}>
            {localTime(first.start)}
          </text>
        )}
        {last && series.length > 1 && (
          <text class="tick" x={WIDTH - PAD.right} y={HEIGHT - 6} text-anchor="end">
            {localTime(last.start)}
          </text>
        )}
      </svg>
      <figcaption class="legend">
        <span class="key key-ok">succeeded</span>
        <span class="key key-fail">failed</span>
        <span class="key key-events">events</span>
      </figcaption>
    </figure>
  );
}
