// Raw servers for fault injection, below what test/support/receiver.ts (node:http) can misbehave:
// garbage instead of HTTP, a body that never ends, TLS with a self-signed certificate, and a bare
// listener that only counts connections (to prove that none was made). All on loopback, port 0 (or
// a given port), each stopped by the test that starts it.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import https from "node:https";
import net, { type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { tempDir } from "../support/temp.ts";

export interface RawServer {
  readonly port: number;
  readonly host: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Connections still open. */
  open(): number;
  stop(): Promise<void>;
}

/** A TCP server on `host` whose connections are handled by `onSocket`; tracks and closes them all. */
export async function startRawServer(
  host: string,
  onSocket: (socket: Socket) => void,
  port = 0,
): Promise<RawServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {}); // the client cutting a socket is what these tests provoke
    onSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    host,
    connections: () => accepted,
    open: () => sockets.size,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** Counts connections and closes each at once: a target that must never be reached. */
export const startCountingListener = (host: string, port = 0) =>
  startRawServer(host, (socket) => socket.destroy(), port);

/** Calls `onRequest` once per connection, when the request's header block has arrived. */
function onRequestHead(socket: Socket, onRequest: () => void) {
  let head = "";
  let seen = false;
  socket.on("data", (chunk: Buffer) => {
    if (seen) return;
    head += chunk.toString("latin1");
    if (head.includes("\r\n\r\n")) {
      seen = true;
      onRequest();
    }
  });
}

/** Answers every request with bytes that are not HTTP at all. */
export const startGarbageServer = () =>
  startRawServer("127.0.0.1", (socket) =>
    onRequestHead(socket, () => socket.end("GARBAGE \u0000\u0001 not a status line\r\n\r\n")),
  );

/** Starts a status line, then drips one header byte every `intervalMs`: the headers never complete. */
export const startSlowHeadersServer = (intervalMs = 100) =>
  startRawServer("127.0.0.1", (socket) =>
    onRequestHead(socket, () => {
      socket.write("HTTP/1.1 200 OK\r\n");
      const timer = setInterval(
        () => (socket.destroyed ? clearInterval(timer) : socket.write("x")),
        intervalMs,
      );
      socket.on("close", () => clearInterval(timer));
    }),
  );

export interface EndlessServer extends RawServer {
  /** Bytes of body written so far, over all connections. */
  bytesWritten(): number;
}

/**
 * Answers with `status` and a chunked body that never ends: 16 KiB chunks as fast as the client
 * drains them (so a client that keeps reading would buffer without limit), until the socket closes.
 */
export async function startEndlessBodyServer(status = 200): Promise<EndlessServer> {
  const chunk = `4000\r\n${"x".repeat(0x4000)}\r\n`;
  let written = 0;
  const server = await startRawServer("127.0.0.1", (socket) =>
    onRequestHead(socket, () => {
      socket.write(
        `HTTP/1.1 ${status} Whatever\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n`,
      );
      const pump = () => {
        while (!socket.destroyed && socket.writable) {
          written += 0x4000;
          if (!socket.write(chunk)) return void socket.once("drain", pump);
        }
      };
      pump();
    }),
  );
  return { ...server, bytesWritten: () => written };
}

/** A self-signed certificate for CN=localhost made with openssl, or null when openssl is missing. */
export function selfSignedCertificate(): { key: Buffer; cert: Buffer } | null {
  const dir = tempDir("hookd-tls-");
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  const made = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-days",
      "1",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    { stdio: "ignore", timeout: 20_000 },
  );
  if (made.error || made.status !== 0) return null;
  return { key: readFileSync(keyPath), cert: readFileSync(certPath) };
}

export interface TlsServer {
  readonly port: number;
  /** Requests that got past the handshake (none should, with a certificate nobody trusts). */
  requests(): number;
  /** Handshakes the client broke off. */
  handshakeErrors(): number;
  stop(): Promise<void>;
}

/** An HTTPS server on 127.0.0.1 with the given certificate, answering 200 to whoever gets through. */
export async function startTlsServer(credentials: { key: Buffer; cert: Buffer }): Promise<TlsServer> {
  let requests = 0;
  let handshakeErrors = 0;
  const sockets = new Set<Socket>();
  const server = https.createServer(credentials, (_req, res) => {
    requests++;
    res.end("ok");
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", () => handshakeErrors++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => requests,
    handshakeErrors: () => handshakeErrors,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
