// A raw HTTP/1.1 client over a TCP socket to 127.0.0.1, for requests fetch() will not send: bytes
// that are not UTF-8 in the request line and headers, conflicting lengths, huge header blocks,
// chunked bodies written piece by piece. Each request uses its own connection and is bounded in
// time. The connection is kept alive (no `Connection: close`) and the answer is read by its own
// framing: a server that answers before reading the whole body and then closes with the rest of
// it unread resets the connection, and a reset can discard an answer already sent.
import net from "node:net";

export interface RawResponse {
  /** null when the connection closed (or was reset) without a final status line. */
  status: number | null;
  /** Lowercased names. */
  headers: Record<string, string>;
  body: Buffer;
  /** From the connection to the end of the answer. */
  ms: number;
  timedOut: boolean;
}

export interface RawRequest {
  /** Request line and headers, without the blank line that ends them (added here). */
  head: string | Buffer;
  /** Body pieces, written in order (already chunk-framed when the head says chunked). */
  body?: readonly (string | Buffer)[];
}

export function rawRequest(port: number, request: RawRequest, timeoutMs = 5_000): Promise<RawResponse> {
  const headBytes = Buffer.isBuffer(request.head) ? request.head : Buffer.from(request.head, "latin1");
  const isHead = headBytes.subarray(0, 5).toString("latin1") === "HEAD ";
  return new Promise((resolve) => {
    const started = performance.now();
    let received = Buffer.alloc(0);
    let done = false;
    const socket = net.connect({ host: "127.0.0.1", port });
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseResponse(received, isHead);
      resolve({
        status: parsed?.status ?? null,
        headers: parsed?.headers ?? {},
        body: parsed?.body ?? Buffer.alloc(0),
        ms: performance.now() - started,
        timedOut,
      });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on("data", (data: Buffer) => {
      received = Buffer.concat([received, data]);
      if (parseResponse(received, isHead)?.complete) finish(false);
    });
    // A reset ends the exchange like a close does.
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
    socket.on("connect", async () => {
      socket.write(Buffer.concat([headBytes, Buffer.from("\r\n\r\n")]));
      for (const piece of request.body ?? []) {
        if (done || socket.destroyed) return;
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece, "latin1");
        if (!socket.write(bytes))
          await new Promise((drained) => socket.once("drain", drained).once("close", drained));
      }
    });
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  complete: boolean;
}

/** The final answer in `bytes` (interim 1xx answers skipped), or null when there is none yet. */
function parseResponse(bytes: Buffer, isHead: boolean): Parsed | null {
  let at = 0;
  for (;;) {
    const end = bytes.indexOf("\r\n\r\n", at);
    if (end < 0) return null;
    const [statusLine = "", ...lines] = bytes.subarray(at, end).toString("latin1").split("\r\n");
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!match) return null;
    const status = Number(match[1]);
    at = end + 4;
    if (status >= 100 && status < 200) continue;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const rest = bytes.subarray(at);
    if (isHead || status === 204 || status === 304)
      return { status, headers, body: Buffer.alloc(0), complete: true };
    if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
      const { body, complete } = dechunk(rest);
      return { status, headers, body, complete };
    }
    const length = headers["content-length"];
    if (length !== undefined) {
      const n = Number(length);
      return { status, headers, body: rest.subarray(0, n), complete: rest.byteLength >= n };
    }
    // No framing: the body runs to the close.
    return { status, headers, body: rest, complete: false };
  }
}

function dechunk(bytes: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf("\r\n", at);
    if (lineEnd < 0) return { body: Buffer.concat(parts), complete: false };
    const size = Number.parseInt(bytes.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size)) return { body: Buffer.concat(parts), complete: true };
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    if (bytes.byteLength < lineEnd + 2 + size + 2) return { body: Buffer.concat(parts), complete: false };
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** `pieces` framed as a chunked body (with the last, empty chunk). */
export function chunked(pieces: readonly (string | Buffer)[]): Buffer[] {
  return [
    ...pieces
      .map((piece) => (Buffer.isBuffer(piece) ? piece : Buffer.from(piece, "utf8")))
      .filter((piece) => piece.byteLength > 0)
      .map((piece) =>
        Buffer.concat([Buffer.from(`${piece.byteLength.toString(16)}\r\n`), piece, Buffer.from("\r\n")]),
      ),
    Buffer.from("0\r\n\r\n"),
  ];
}
