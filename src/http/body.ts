// Reading request bodies within limits.max_payload_bytes, before any parsing, and turning zod
// issues into the API's `{path, message}` details.
import type { Context } from "hono";
import type { z } from "zod";
import { formatPath } from "../config/load.ts";
import { ApiError, type ErrorDetail, validationFailed } from "../domain/errors.ts";

export function payloadTooLarge(limit: number): ApiError {
  return new ApiError("payload_too_large", `the request body is larger than ${limit} bytes`);
}

/** The client went away (or sent a body the server could not frame) before its body ended. */
function bodyCutOff(): never {
  throw new ApiError("invalid_json", "the request body ended before it was complete");
}

/** Deeper JSON than this is refused: serializing it again would exhaust the stack. */
export const MAX_JSON_DEPTH = 256;

/** The deepest nesting of arrays and objects in JSON text (strings skipped), stopping past `limit`. */
export function jsonDepthExceeds(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: skip the escaped character
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > limit) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

/** The raw body, refused with 413 as soon as it passes `limit` bytes (declared or streamed). */
export async function readBody(c: Context, limit: number): Promise<Uint8Array> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > limit) throw payloadTooLarge(limit);
  // A declared length within the limit: the server holds the request to it, so read it whole
  // (much cheaper than pulling the stream chunk by chunk). Chunked bodies are counted as they come.
  if (declared !== undefined && /^\d+$/.test(declared)) {
    return new Uint8Array(await c.req.raw.arrayBuffer().catch(bodyCutOff));
  }
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read().catch(bodyCutOff);
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The body as JSON; `undefined` when it is empty and `optional`. */
export async function readJson(
  c: Context,
  limit: number,
  options: { optional?: boolean } = {},
): Promise<unknown> {
  const bytes = await readBody(c, limit);
  if (bytes.byteLength === 0) {
    if (options.optional) return undefined;
    throw new ApiError("invalid_json", "the request body is empty; a JSON object is expected");
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new ApiError("invalid_json", "the request body is not valid UTF-8");
  }
  if (jsonDepthExceeds(bytes, MAX_JSON_DEPTH)) {
    throw validationFailed([{ path: "body", message: `is nested more than ${MAX_JSON_DEPTH} levels deep` }]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError("invalid_json", `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Validates `input` against `schema`, or throws a 422 listing every field at fault. */
export function validate<S extends z.ZodType>(schema: S, input: unknown, root?: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw validationFailed(zodDetails(result.error, root));
}

export function zodDetails(error: z.ZodError, root?: string): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const issue of error.issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys)
        details.push({ path: join(root, [...path, key]), message: "is not a known field" });
      continue;
    }
    const code = issue.code === "custom" ? (issue.params as { code?: string } | undefined)?.code : undefined;
    details.push({ path: join(root, path), message: issue.message, ...(code ? { code } : {}) });
  }
  return details;
}

function join(root: string | undefined, path: readonly PropertyKey[]): string {
  const tail = formatPath(path);
  if (root === undefined) return tail || "body";
  if (tail === "") return root;
  return tail.startsWith("[") ? `${root}${tail}` : `${root}.${tail}`;
}
