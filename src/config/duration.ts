// Durations as text: "500ms", "5s", "5m", "2h", "5d" (a unit is always required).

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds for a duration string, or null when the text is not one. */
export function parseDuration(text: string): number | null {
  const match = PATTERN.exec(text.trim());
  if (!match) return null;
  const value = Number(match[1]) * (UNITS[match[2] as string] as number);
  return Number.isFinite(value) ? Math.round(value) : null;
}
