// Event type names, subscription patterns (`*`, `invoice.*`) and the catalog from the config.

const SEGMENT = "[A-Za-z0-9_-]+";
const NAME = new RegExp(`^${SEGMENT}(\\.${SEGMENT})*$`);
const PREFIX_PATTERN = new RegExp(`^(${SEGMENT}(\\.${SEGMENT})*)\\.\\*$`);
export const MAX_EVENT_TYPE_LENGTH = 255;

/** Types hookd publishes itself: always in the catalog, always subscribable. */
export const BUILT_IN_EVENT_TYPES = [
  { name: "webhook.test", description: "A test event sent by POST /v1/webhooks/{id}/test." },
  {
    name: "webhook.disabled",
    description: "hookd disabled a subscription (data: webhook_id, url, reason).",
  },
] as const;

export function isValidEventTypeName(name: string): boolean {
  return name.length <= MAX_EVENT_TYPE_LENGTH && NAME.test(name);
}

export function isValidEventPattern(pattern: string): boolean {
  return (
    pattern === "*" ||
    isValidEventTypeName(pattern) ||
    (pattern.length <= MAX_EVENT_TYPE_LENGTH && PREFIX_PATTERN.test(pattern))
  );
}

/** Whether a subscription pattern receives events of `type`. */
export function patternMatches(pattern: string, type: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

export function anyPatternMatches(patterns: readonly string[], type: string): boolean {
  return patterns.some((pattern) => patternMatches(pattern, type));
}

export interface EventTypeEntry {
  name: string;
  description: string;
  schema?: Readonly<Record<string, unknown>>;
}

export interface EventCatalog {
  readonly entries: readonly EventTypeEntry[];
  /** True when the config declares types: then unknown ones are refused. */
  readonly restricted: boolean;
  isKnownType(type: string): boolean;
  /** A pattern is known when it names, or matches, at least one type of the catalog. */
  isKnownPattern(pattern: string): boolean;
  find(type: string): EventTypeEntry | undefined;
}

export function createEventCatalog(configured: readonly EventTypeEntry[]): EventCatalog {
  const entries: EventTypeEntry[] = [...configured];
  for (const builtIn of BUILT_IN_EVENT_TYPES) {
    if (!entries.some((entry) => entry.name === builtIn.name)) entries.push({ ...builtIn });
  }
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  const restricted = configured.length > 0;
  return {
    entries,
    restricted,
    isKnownType: (type) => !restricted || byName.has(type),
    isKnownPattern: (pattern) => {
      if (pattern === "*" || !restricted) return true;
      if (!pattern.endsWith(".*")) return byName.has(pattern);
      return entries.some((entry) => patternMatches(pattern, entry.name));
    },
    find: (type) => byName.get(type),
  };
}
