// Cursor pagination (SPEC §2 Pagination): opaque cursors carrying the sort key and id of a row,
// the shared query fields, and the response envelope.
import { z } from "zod";
import { ApiError } from "../domain/errors.ts";
import type { Cursor, Page, PageQuery } from "../store/store.ts";

export const pageQueryShape = {
  limit: z
    .string()
    .regex(/^\d+$/, "must be a whole number from 1 to 100")
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, "must be a whole number from 1 to 100")
        .max(100, "must be a whole number from 1 to 100"),
    )
    .optional(),
  after: z.string().max(1024).optional(),
  before: z.string().max(1024).optional(),
};

interface EncodedCursor {
  o: string;
  v: string | number;
  i: string;
}

export function encodeCursor(order: string, cursor: Cursor): string {
  const body: EncodedCursor = { o: order, v: cursor.value, i: cursor.id };
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

export function decodeCursor(
  text: string,
  order: string,
  valueType: "string" | "number",
  field: string,
): Cursor {
  const invalid = () =>
    new ApiError("validation_failed", "the request is not valid", [
      { path: field, message: "is not a valid cursor for this list and order", code: "invalid_cursor" },
    ]);
  if (!/^[A-Za-z0-9_-]{1,1024}$/.test(text)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  const body = parsed as Partial<EncodedCursor> | null;
  if (
    !body ||
    typeof body !== "object" ||
    body.o !== order ||
    typeof body.v !== valueType ||
    typeof body.i !== "string" ||
    (typeof body.v === "number" && !Number.isSafeInteger(body.v))
  ) {
    throw invalid();
  }
  return { value: body.v as string | number, id: body.i };
}

export function toPageQuery<Order extends string>(
  query: { limit?: number; after?: string; before?: string },
  order: Order,
  valueType: "string" | "number",
): PageQuery<Order> {
  if (query.after !== undefined && query.before !== undefined) {
    throw new ApiError("validation_failed", "the request is not valid", [
      { path: "before", message: "cannot be combined with after" },
    ]);
  }
  return {
    order,
    limit: query.limit ?? 20,
    ...(query.after !== undefined ? { after: decodeCursor(query.after, order, valueType, "after") } : {}),
    ...(query.before !== undefined ? { before: decodeCursor(query.before, order, valueType, "before") } : {}),
  };
}

export interface PageBody<R> {
  data: R[];
  has_next_page: boolean;
  has_previous_page: boolean;
  start_cursor: string | null;
  end_cursor: string | null;
}

export function toPageBody<T, R>(
  page: Page<T>,
  order: string,
  cursorOf: (item: T) => Cursor,
  render: (item: T) => R,
): PageBody<R> {
  const first = page.items[0];
  const last = page.items[page.items.length - 1];
  return {
    data: page.items.map(render),
    has_next_page: page.hasNextPage,
    has_previous_page: page.hasPreviousPage,
    start_cursor: first ? encodeCursor(order, cursorOf(first)) : null,
    end_cursor: last ? encodeCursor(order, cursorOf(last)) : null,
  };
}

export function pageBodySchema<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    has_next_page: z.boolean(),
    has_previous_page: z.boolean(),
    start_cursor: z.string().nullable(),
    end_cursor: z.string().nullable(),
  });
}
