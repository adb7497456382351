// A lean HTTP/1.1 client for plain-http attempts, over Bun.connect: one POST per connection at a
// time, keep-alive pools per origin, connections only to an address the caller checked. It does
// what an attempt needs and nothing else: no redirects (a 3xx is an answer like any other), the
// response body read up to a cap, then the connection dropped rather than drained; a response
// head over 16 KiB, a malformed status line, header or chunk is `invalid_response`. node:http's
// general machinery (streams, events, agents) cost most of a delivery's CPU; this parses the few
// bytes an answer has in one pass.
import type { Socket } from "bun";

/** Largest response head (status line and headers) accepted, as node:http's default. */
export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_HEADERS = 64;
const MAX_HEADER_VALUE = 1024;
const MAX_CHUNK_LINE = 1024;
/** An idle pooled connection is closed after this long (seconds). */
const IDLE_SECONDS = 30;

export interface Http1Answer {
  statusCode: number;
  headers: Record<string, string>;
  /** The body's first `bodyLimit` bytes. */
  body: Uint8Array;
}

export type Http1Outcome =
  /** A complete answer; `cut` when the body went past the cap (the connection was dropped). */
  | { kind: "answer"; answer: Http1Answer; cut: boolean }
  /** The head came, then the connection failed or broke the protocol: the answer so far. */
  | { kind: "partial"; answer: Http1Answer; detail: string }
  | { kind: "error"; code: string; detail: string };

interface Pending {
  onDone(outcome: Http1Outcome, reusable: boolean): void;
}

enum State {
  Head,
  Body,
  Chunked,
  UntilClose,
  Done,
}

/** One connection: writes one request at a time and parses its answer as bytes arrive. */
export class Http1Connection {
  socket: Socket<undefined> | null = null;
  closed = false;
  /** A request was answered on it (so a failure before any byte may be a stale keep-alive). */
  used = false;
  private pending: Pending | null = null;
  private unsent: Uint8Array | null = null;
  private state = State.Head;
  private head = "";
  private headBytes = 0;
  private received = 0;
  private answer: Http1Answer | null = null;
  private chunks: Uint8Array[] = [];
  private kept = 0;
  private total = 0;
  private remaining = 0;
  private chunkLine = "";
  private inChunkData = false;
  private trailers = false;
  private closeAfter = false;
  private bodyLimit = 0;

  constructor(private readonly onIdleClose: (c: Http1Connection) => void) {}

  /** Whether bytes of the current answer have arrived. */
  get answered(): boolean {
    return this.received > 0;
  }

  send(request: Uint8Array, bodyLimit: number, pending: Pending): void {
    this.pending = pending;
    this.bodyLimit = bodyLimit;
    this.state = State.Head;
    this.head = "";
    this.headBytes = 0;
    this.received = 0;
    this.answer = null;
    this.chunks = [];
    this.kept = this.total = this.remaining = 0;
    this.chunkLine = "";
    this.inChunkData = this.trailers = this.closeAfter = this.afterChunk = false;
    this.socket?.timeout(0);
    this.write(request);
  }

  private write(bytes: Uint8Array): void {
    const socket = this.socket;
    if (!socket || this.closed) return;
    const written = socket.write(bytes);
    if (written < bytes.length) this.unsent = bytes.subarray(Math.max(0, written));
  }

  onDrain(): void {
    const rest = this.unsent;
    this.unsent = null;
    if (rest) this.write(rest);
  }

  onData(data: Uint8Array): void {
    if (!this.pending) {
      // Bytes on an idle connection answer nothing: it is not safe to reuse.
      this.destroy();
      return;
    }
    this.received += data.length;
    let at = 0;
    while (at < data.length && this.pending) {
      switch (this.state) {
        case State.Head:
          at = this.readHead(data, at);
          break;
        case State.Body: {
          const n = Math.min(this.remaining, data.length - at);
          if (this.take(data.subarray(at, at + n))) return;
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.complete(data.length - at);
            return;
          }
          break;
        }
        case State.UntilClose:
          if (this.take(data.subarray(at))) return;
          at = data.length;
          break;
        case State.Chunked:
          at = this.readChunked(data, at);
          break;
        case State.Done:
          return;
      }
    }
  }

  /** Accumulates the head; answers the offset of the first byte after it (or data.length). */
  private readHead(data: Uint8Array, at: number): number {
    // Latin-1 keeps one character per byte, so offsets in the text are offsets in the bytes.
    const text = latin1(data, at);
    const before = this.head.length;
    this.head += text;
    const end = this.head.indexOf("\r\n\r\n", Math.max(0, before - 3));
    if (end < 0) {
      this.headBytes = this.head.length;
      if (this.headBytes > MAX_HEAD_BYTES) this.fail("invalid_response", "response head too large");
      return data.length;
    }
    if (end > MAX_HEAD_BYTES) {
      this.fail("invalid_response", "response head too large");
      return data.length;
    }
    const consumed = at + (end + 4 - before);
    const head = this.head.slice(0, end);
    this.head = "";
    const parsed = parseHead(head);
    if (typeof parsed === "string") {
      this.fail("invalid_response", parsed);
      return data.length;
    }
    if (parsed.statusCode < 200) return consumed; // 1xx: an interim answer, the real one follows
    this.answer = { statusCode: parsed.statusCode, headers: parsed.headers, body: new Uint8Array(0) };
    this.closeAfter = parsed.close;
    const te = parsed.headers["transfer-encoding"];
    const cl = parsed.headers["content-length"];
    if (parsed.statusCode === 204 || parsed.statusCode === 304) {
      this.complete(data.length - consumed);
      return data.length;
    }
    if (te !== undefined) {
      if (te.trim().toLowerCase() !== "chunked") {
        this.state = State.UntilClose;
        this.closeAfter = true;
      } else this.state = State.Chunked;
    } else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl.trim())) {
        this.fail("invalid_response", "invalid content-length");
        return data.length;
      }
      this.remaining = Number(cl.trim());
      if (this.remaining === 0) {
        this.complete(data.length - consumed);
        return data.length;
      }
      this.state = State.Body;
    } else {
      this.state = State.UntilClose;
      this.closeAfter = true;
    }
    return consumed;
  }

  private readChunked(data: Uint8Array, at: number): number {
    while (at < data.length && this.pending) {
      if (this.inChunkData) {
        const n = Math.min(this.remaining, data.length - at);
        if (this.take(data.subarray(at, at + n))) return data.length;
        at += n;
        this.remaining -= n;
        if (this.remaining === 0) this.inChunkData = false;
        continue;
      }
      const byte = data[at++] as number;
      if (byte !== 0x0a) {
        this.chunkLine += String.fromCharCode(byte);
        if (this.chunkLine.length > MAX_CHUNK_LINE) {
          this.partial("chunk line too long");
          return data.length;
        }
        continue;
      }
      const line = this.chunkLine.endsWith("\r") ? this.chunkLine.slice(0, -1) : this.chunkLine;
      this.chunkLine = "";
      if (this.trailers) {
        if (line === "") {
          this.complete(data.length - at);
          return data.length;
        }
        continue;
      }
      if (this.afterChunk) {
        // The CRLF that ends a chunk's data.
        this.afterChunk = false;
        if (line !== "") {
          this.partial("chunk not terminated");
          return data.length;
        }
        continue;
      }
      const size = /^([0-9a-fA-F]{1,12})(?:;.*)?$/.exec(line.trim());
      if (!size) {
        this.partial("invalid chunk size");
        return data.length;
      }
      const n = Number.parseInt(size[1] as string, 16);
      if (n === 0) this.trailers = true;
      else {
        this.remaining = n;
        this.inChunkData = true;
        this.afterChunk = true;
      }
    }
    return at;
  }

  private afterChunk = false;

  /** Keeps body bytes up to the cap; answers true when the cap was passed (the attempt ended). */
  private take(bytes: Uint8Array): boolean {
    this.total += bytes.length;
    if (this.kept < this.bodyLimit) {
      const part = bytes.subarray(0, this.bodyLimit - this.kept);
      this.chunks.push(part.slice());
      this.kept += part.length;
    }
    if (this.total > this.bodyLimit) {
      this.finish({ kind: "answer", answer: this.withBody(), cut: true }, false);
      return true;
    }
    return false;
  }

  private withBody(): Http1Answer {
    const answer = this.answer as Http1Answer;
    answer.body = concat(this.chunks, this.kept);
    return answer;
  }

  /** The answer is whole; `rest` bytes followed it (more than it framed: not reusable). */
  private complete(rest = 0): void {
    this.state = State.Done;
    this.finish({ kind: "answer", answer: this.withBody(), cut: false }, !this.closeAfter && rest === 0);
  }

  /** The answer so far (status, headers, the body up to the cap), or null before the head. */
  snapshot(): Http1Answer | null {
    return this.answer ? this.withBody() : null;
  }

  private partial(detail: string): void {
    this.finish({ kind: "partial", answer: this.withBody(), detail }, false);
  }

  private fail(code: string, detail: string): void {
    if (this.answer) this.partial(detail);
    else this.finish({ kind: "error", code, detail }, false);
  }

  private finish(outcome: Http1Outcome, reusable: boolean): void {
    const pending = this.pending;
    this.pending = null;
    this.used = true;
    if (!reusable || this.unsent) this.destroy();
    else this.socket?.timeout(IDLE_SECONDS);
    pending?.onDone(outcome, reusable && !this.closed);
  }

  /** The connection ended (closed by the peer, reset, or destroyed). */
  onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket = null;
    if (!this.pending) {
      this.onIdleClose(this);
      return;
    }
    if (this.state === State.UntilClose) {
      this.complete();
      return;
    }
    const code = (error as NodeJS.ErrnoException | undefined)?.code ?? "ECONNRESET";
    this.fail(code, error?.message ?? "socket hang up");
  }

  /** Abandons the current request (deadline, shutdown) and the connection. */
  abandon(): void {
    this.pending = null;
    this.destroy();
  }

  destroy(): void {
    const socket = this.socket;
    if (!socket) {
      this.closed = true;
      return;
    }
    this.socket = null;
    socket.terminate();
    this.onClose();
  }
}

function latin1(data: Uint8Array, at: number): string {
  return Buffer.from(data.buffer, data.byteOffset + at, data.length - at).toString("latin1");
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

// A field name is a token; a value has no control characters but tab.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** The status and headers of a response head, or why it is not HTTP/1.x. */
export function parseHead(
  head: string,
): { statusCode: number; headers: Record<string, string>; close: boolean } | string {
  const lines = head.split("\r\n");
  const status = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/.exec(lines[0] ?? "");
  if (!status) return "invalid status line";
  const headers: Record<string, string> = {};
  let n = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(":");
    if (colon <= 0) return "invalid header line";
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return "invalid header name";
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) return "invalid header value";
    const key = name.toLowerCase();
    if (key === "content-length" && headers[key] !== undefined && headers[key] !== value)
      return "conflicting content-length";
    if (headers[key] !== undefined) {
      if (key !== "content-length") headers[key] = `${headers[key]}, ${value}`.slice(0, MAX_HEADER_VALUE);
    } else if (n++ < MAX_HEADERS || key === "content-length" || key === "transfer-encoding") {
      headers[key] = value.slice(0, MAX_HEADER_VALUE);
    }
  }
  const connection = (headers.connection ?? "").toLowerCase();
  const close = status[1] === "0" ? !connection.includes("keep-alive") : connection.includes("close");
  return { statusCode: Number(status[2]), headers, close };
}

/** Opens a connection to a checked address; resolves once it is open. */
export async function connect(
  address: string,
  port: number,
  onIdleClose: (c: Http1Connection) => void,
): Promise<Http1Connection> {
  const connection = new Http1Connection(onIdleClose);
  const socket = await Bun.connect({
    hostname: address,
    port,
    socket: {
      data: (_s, data) => connection.onData(data),
      drain: () => connection.onDrain(),
      close: (_s, error) => connection.onClose(error),
      error: (_s, error) => connection.onClose(error),
      end: () => connection.destroy(),
      timeout: () => connection.destroy(),
    },
  });
  if (connection.closed) {
    socket.terminate();
    throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
  }
  connection.socket = socket;
  socket.setNoDelay(true);
  return connection;
}
