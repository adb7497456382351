// A scripted webhook receiver for tests: a real node:http server on 127.0.0.1, port 0, that records
// every request and answers as the test scripts it (node:http rather than Bun.serve so a reply can
// hang, drip its body or cut the socket mid-response).
//
//   const r = await startReceiver();
//   const url = r.url("/hooks");                    // http://127.0.0.1:<port>/hooks
//   r.script("/hooks", { status: 500 }, { status: 200 }); // queued: one reply per request, in order
//   r.always("/slow", { kind: "hang" });            // sticky: used once the path's queue is empty
//   r.always("*", { status: 204 });                 // any path without its own script (default 200 "ok")
//   await r.waitForRequests(2, "/hooks");           // bounded poll; returns the requests on that path
//   r.requests                                      // every request: method, path, headers, body, at, remotePort
//   r.open()                                        // requests received and not yet answered in full
//   await r.stop();                                 // in afterEach: closes every connection
//
// Replies (see `Reply`):
//   { status?, headers?, body? }                    plain answer (200, empty body by default)
//   { kind: "hang" }                                read the request, never answer
//   { kind: "slowBody", status?, chunk?, intervalMs? } headers at once, then `chunk` every interval, forever
//   { kind: "reset", status?, partialBody? }        headers and part of a body, then the socket is destroyed
//   { kind: "reset", beforeHeaders: true }          the socket is destroyed before any answer
//   { kind: "redirect", location, status? }         302 (or the given 3xx) with Location
//   retryAfter(429 | 503, "1")                      helper for { status, headers: { "retry-after": ... } }
// Headers are recorded lowercased; `at` is Date.now() when the request's body had fully arrived.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { waitFor } from "./wait-for.ts";

export interface ReceivedRequest {
  method: string;
  /** Path with the query string. */
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Arrival time (ms since the epoch), once the body was read. */
  at: number;
  /** The client's port: requests that share it came over one kept-alive connection. */
  remotePort: number;
}

export type Reply =
  | { kind?: "answer"; status?: number; headers?: Record<string, string>; body?: string }
  | { kind: "hang" }
  | { kind: "slowBody"; status?: number; chunk?: string; intervalMs?: number }
  | { kind: "reset"; status?: number; partialBody?: string; beforeHeaders?: boolean }
  | { kind: "redirect"; location: string; status?: number };

export interface Receiver {
  readonly port: number;
  /** Every request received so far, in arrival order. */
  readonly requests: ReceivedRequest[];
  url(path?: string): string;
  /** Queues replies for `path` ("*" for any path without its own), consumed one per request. */
  script(path: string, ...replies: Reply[]): void;
  /** The reply for `path` ("*": any path) once its queue is empty. */
  always(path: string, reply: Reply): void;
  /** Requests on `path` (all paths when omitted). */
  received(path?: string): ReceivedRequest[];
  /** Waits (bounded) until at least `n` requests arrived on `path` (all paths when omitted). */
  waitForRequests(n: number, path?: string, timeoutMs?: number): Promise<ReceivedRequest[]>;
  /** Requests received whose response has not finished (hanging, dripping). */
  open(): number;
  stop(): Promise<void>;
}

export const retryAfter = (status: 429 | 503, value: string): Reply => ({
  status,
  headers: { "retry-after": value },
  body: status === 429 ? "slow down" : "unavailable",
});

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const queues = new Map<string, Reply[]>();
  const sticky = new Map<string, Reply>();
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setInterval>>();
  let open = 0;

  const pathOf = (raw: string) => raw.split("?")[0] ?? raw;
  const nextReply = (path: string): Reply => {
    for (const key of [path, "*"]) {
      const queued = queues.get(key)?.shift();
      if (queued) return queued;
      const fixed = sticky.get(key);
      if (fixed) return fixed;
    }
    return { status: 200, body: "ok" };
  };

  const answer = (res: http.ServerResponse, reply: Reply) => {
    let finished = false;
    const done = () => {
      if (!finished) {
        finished = true;
        open--;
      }
    };
    res.on("close", done);
    switch (reply.kind) {
      case "hang":
        return;
      case "slowBody": {
        res.writeHead(reply.status ?? 200, { "content-type": "text/plain" });
        res.flushHeaders();
        const timer = setInterval(() => res.write(reply.chunk ?? "."), reply.intervalMs ?? 100);
        timers.add(timer);
        res.on("close", () => {
          clearInterval(timer);
          timers.delete(timer);
        });
        return;
      }
      case "reset": {
        if (reply.beforeHeaders) {
          res.socket?.destroy();
          return;
        }
        res.writeHead(reply.status ?? 200, { "content-type": "text/plain", "content-length": "100000" });
        res.write(reply.partialBody ?? "partial", () => res.socket?.destroy());
        return;
      }
      case "redirect":
        res.writeHead(reply.status ?? 302, { location: reply.location });
        res.end();
        done();
        return;
      default:
        res.writeHead(reply.status ?? 200, reply.headers ?? {});
        res.end(reply.body ?? "");
        done();
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined)
          headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
      }
      const path = req.url ?? "/";
      requests.push({
        method: req.method ?? "",
        path,
        headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
        remotePort: req.socket.remotePort ?? 0,
      });
      open++;
      answer(res, nextReply(pathOf(path)));
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  const received = (path?: string) =>
    path === undefined ? [...requests] : requests.filter((r) => pathOf(r.path) === path);

  return {
    port,
    requests,
    url: (path = "/") => `http://127.0.0.1:${port}${path}`,
    script(path, ...replies) {
      queues.set(path, [...(queues.get(path) ?? []), ...replies]);
    },
    always(path, reply) {
      sticky.set(path, reply);
    },
    received,
    waitForRequests: (n, path, timeoutMs = 10_000) =>
      waitFor(() => (received(path).length >= n ? received(path) : null), {
        timeoutMs,
        what: `${n} request(s) on ${path ?? "any path"} (got ${received(path).length})`,
      }),
    open: () => open,
    async stop() {
      for (const timer of timers) clearInterval(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections?.();
      await closed;
    },
  };
}
