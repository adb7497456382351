// Rows of the results table: a figure, the ceiling it is compared with (measured in the same run),
// their ratio, and the issue's target with PASS/MISS.
import { round } from "./stats.ts";

export interface Target {
  /** What the target bounds: the figure itself, or the ratio to the ceiling. */
  on: "value" | "ratio";
  op: ">=" | "<=";
  bound: number;
}

export interface Row {
  scenario: string;
  figure: string;
  value: number;
  unit: string;
  ceiling: number | null;
  /** What the ceiling is (shown in BENCHMARKS.md and the JSON). */
  ceilingOf: string;
  ratio: number | null;
  target: Target | null;
  verdict: "PASS" | "MISS" | "";
  note?: string;
}

export function row(fields: {
  scenario: string;
  figure: string;
  value: number;
  unit: string;
  ceiling?: number | null;
  ceilingOf?: string;
  target?: Target | null;
  note?: string;
}): Row {
  const ceiling = fields.ceiling ?? null;
  const ratio =
    ceiling !== null && Number.isFinite(ceiling) && ceiling !== 0 && Number.isFinite(fields.value)
      ? fields.value / ceiling
      : null;
  const target = fields.target ?? null;
  let verdict: Row["verdict"] = "";
  if (target) {
    const subject = target.on === "value" ? fields.value : ratio;
    const ok =
      subject !== null &&
      Number.isFinite(subject) &&
      (target.op === ">=" ? subject >= target.bound : subject <= target.bound);
    verdict = ok ? "PASS" : "MISS";
  }
  return {
    scenario: fields.scenario,
    figure: fields.figure,
    value: fields.value,
    unit: fields.unit,
    ceiling,
    ceilingOf: fields.ceilingOf ?? "",
    ratio,
    target,
    verdict,
    ...(fields.note ? { note: fields.note } : {}),
  };
}

export function formatNumber(value: number | null, unit = ""): string {
  if (value === null || !Number.isFinite(value)) return "—";
  let text: string;
  if (unit === "B") {
    if (value >= 1024 * 1024) return `${round(value / (1024 * 1024))} MiB`;
    if (value >= 1024) return `${round(value / 1024)} KiB`;
    return `${round(value)} B`;
  }
  if (Math.abs(value) >= 10_000) text = `${round(value / 1000)} k`;
  else text = String(round(value));
  return unit ? `${text} ${unit}`.replace("k /s", "k/s") : text;
}

function formatTarget(target: Target | null, unit: string): string {
  if (!target) return "";
  const op = target.op === ">=" ? "≥" : "≤";
  return target.on === "ratio"
    ? `${op} ${target.bound}× ceiling`
    : `${op} ${formatNumber(target.bound, unit)}`;
}

export function markdownTable(rows: readonly Row[]): string {
  const lines = [
    "| Scenario | Figure | Value | Ceiling | Ratio | Target | Result |",
    "|---|---|---:|---:|---:|---|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario} | ${r.figure} | ${formatNumber(r.value, r.unit)} | ${formatNumber(r.ceiling, r.unit)} | ${
        r.ratio === null ? "—" : `${round(r.ratio, 2)}×`
      } | ${formatTarget(r.target, r.unit)} | ${r.verdict} |`,
    );
  }
  return lines.join("\n");
}
