// JSON Schema validation of event data, with ajv: each catalog schema compiled once at start.
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";

export interface SchemaProblem {
  path: string;
  message: string;
}

export type DataValidator = (data: unknown) => SchemaProblem[];

// Made on first use: building it costs start-up time that a catalog without schemas never needs.
let ajv: Ajv | undefined;

/** Compiles a schema; throws with ajv's message when it is not a valid JSON Schema. */
export function compileSchema(schema: Readonly<Record<string, unknown>>): DataValidator {
  ajv ??= new Ajv({ allErrors: true, strict: false, validateSchema: true });
  const validate: ValidateFunction = ajv.compile(schema as Record<string, unknown>);
  return (data) => (validate(data) ? [] : (validate.errors ?? []).map(toProblem));
}

/** `/items/0/name` → `items[0].name`; missing required properties name the property. */
function toProblem(error: ErrorObject): SchemaProblem {
  const parts = error.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (error.keyword === "required")
    parts.push(String((error.params as { missingProperty: string }).missingProperty));
  let path = "";
  for (const part of parts) path += /^\d+$/.test(part) ? `[${part}]` : path === "" ? part : `.${part}`;
  return { path, message: error.message ?? "is not valid" };
}

export function schemaProblem(schema: Readonly<Record<string, unknown>>): string | null {
  try {
    compileSchema(schema);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}
