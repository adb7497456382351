// The one error class of the API and its stable codes (SPEC §2 Errors). Handlers throw ApiError;
// the HTTP layer maps it to `{"error": {code, message, details?}}`. Below it, the errors a store
// raises whichever its driver, so callers test for them without importing a driver.

export const ERROR_STATUS = {
  invalid_json: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  path: string;
  message: string;
  /** A machine-readable reason for some details, such as `unknown_event_type`. */
  code?: string;
}

export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }

  toBody(): { error: { code: ErrorCode; message: string; details?: ErrorDetail[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.code === "validation_failed" ? { details: this.details ?? [] } : {}),
      },
    };
  }
}

export const notFound = (what = "resource") => new ApiError("not_found", `${what} not found`);

export const validationFailed = (details: ErrorDetail[]) =>
  new ApiError("validation_failed", "the request is not valid", details);

/** Raised by a store when the database cannot be written (disk full, read-only, locked). */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageUnavailableError";
  }
}

/**
 * Raised by a store, whichever its driver, when the database's schema is newer than every migration
 * this hookd knows: it was written by a newer hookd, and is left untouched.
 */
export class DatabaseTooNewError extends Error {
  constructor(found: number, known: number) {
    super(
      `the database is at schema version ${found}, but this hookd knows versions up to ${known}: ` +
        "it was written by a newer hookd; run that version, or restore a backup",
    );
    this.name = "DatabaseTooNewError";
  }
}
