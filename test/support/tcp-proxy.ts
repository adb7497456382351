// A TCP proxy that a test controls, placed between hookd and PostgreSQL to inject database faults
// that a real network or server produces and a mock cannot: a dead link, a refused port, a reset.
//
//   const proxy = await createTcpProxy({ target: { host: "127.0.0.1", port: 5432 } });
//   const url = proxy.url(process.env.HOOKD_TEST_POSTGRES_URL!); // same URL, host/port -> the proxy
//   await proxy.mode("blackhole"); // connections stay open, every byte vanishes both ways
//   await proxy.mode("refuse");    // open connections are reset, new ones get ECONNREFUSED
//   await proxy.mode("pass");      // the default: bytes flow both ways
//   proxy.reset();                 // RST every open connection now (a server restart, a reset link)
//   proxy.connections();           // client connections currently open
//   proxy.bytes();                 // { toServer, toClient, dropped }
//   await proxy.close();           // in afterEach; safe to call twice
//
// Bytes are relayed by hand (not pipe()) so that the mode is checked on every chunk: switching to
// blackhole takes effect mid-stream. A connection that lived through a blackhole has lost bytes and
// is out of step with the protocol, as after any real loss TCP could not repair; a test that wants
// clean connections afterwards calls reset().
//
// "refuse" stops listening rather than accepting and resetting: Bun's SQL client retries a
// connection that closes before its handshake until connectionTimeout, but gives up at once on
// ECONNREFUSED, which is what a stopped PostgreSQL answers. Leaving refuse listens again on the
// same port (SO_REUSEADDR lets it rebind at once); mode() returns a promise for that.
import net, { type AddressInfo, type Socket } from "node:net";

export type ProxyMode = "pass" | "blackhole" | "refuse";

export interface ProxyBytes {
  /** Bytes relayed from clients to the target. */
  toServer: number;
  /** Bytes relayed from the target to clients. */
  toClient: number;
  /** Bytes read from either side and thrown away while blackholed. */
  dropped: number;
}

export interface TcpProxy {
  readonly port: number;
  /** `base` (e.g. a postgres:// URL) with its host and port replaced by the proxy's. */
  url(base: string): string;
  /** Resolves once the listener matches the mode (closed for refuse, open otherwise). */
  mode(next: ProxyMode): Promise<void>;
  /** Destroys every open connection, both sides, with a TCP RST. */
  reset(): void;
  connections(): number;
  bytes(): ProxyBytes;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
}

export async function createTcpProxy(options: { target: { host: string; port: number } }): Promise<TcpProxy> {
  const { target } = options;
  const pairs = new Set<Pair>();
  const counters: ProxyBytes = { toServer: 0, toClient: 0, dropped: 0 };
  let current: ProxyMode = "pass";
  let closed = false;
  // Listener changes run one after another, so that refuse/pass flips in quick succession end
  // in the state of the last one.
  let transition: Promise<void> = Promise.resolve();

  const listener = net.createServer((client) => {
    // A connection that raced in while the listener was closing for refuse (or close()).
    if (current === "refuse" || closed) {
      hardClose(client);
      return;
    }
    // The upstream is dialled even while blackholed, so that a connection accepted during a
    // blackhole is a real (silent) one if the test later switches back to pass.
    const server = net.connect(target.port, target.host);
    const pair: Pair = { client, server };
    pairs.add(pair);
    relay(client, server, "toServer");
    relay(server, client, "toClient");
    // Errors (ECONNRESET from our own resets, a target that is down) only end the pair; a test
    // observes them through its client, so the proxy must not throw them.
    client.on("error", () => {});
    server.on("error", () => {});
    client.on("close", () => {
      pairs.delete(pair);
      server.destroy();
    });
    server.on("close", () => {
      // A dead network would not carry the server's FIN or RST either: while blackholed the
      // client keeps its half-open connection until the test resets or closes the proxy.
      if (current !== "blackhole") client.destroy();
    });
  });

  function relay(from: Socket, to: Socket, counter: "toServer" | "toClient"): void {
    from.on("data", (chunk: Buffer) => {
      if (current === "blackhole") {
        counters.dropped += chunk.length;
        return;
      }
      counters[counter] += chunk.length;
      if (!to.destroyed) to.write(chunk);
    });
    from.on("end", () => {
      if (current !== "blackhole") to.end();
    });
  }

  function hardClose(socket: Socket): void {
    // resetAndDestroy sends an RST (a FIN would look like an orderly shutdown); older runtimes lack it.
    if (typeof socket.resetAndDestroy === "function" && !socket.destroyed) socket.resetAndDestroy();
    else socket.destroy();
  }

  function resetAll(): void {
    for (const pair of pairs) {
      hardClose(pair.client);
      hardClose(pair.server);
    }
    pairs.clear();
  }

  function listen(port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(port, "127.0.0.1", () => {
        listener.off("error", reject);
        resolve();
      });
    });
  }

  async function syncListener(): Promise<void> {
    const wanted = !closed && current !== "refuse";
    if (wanted && !listener.listening) await listen(port);
    // close() calls back once every connection has gone; resetAll() has already destroyed them.
    if (!wanted && listener.listening) await new Promise<void>((resolve) => listener.close(() => resolve()));
  }

  function applyListener(): Promise<void> {
    // A failed rebind is reported to the caller that asked for it, not to every later one.
    transition = transition.catch(() => {}).then(syncListener);
    return transition;
  }

  await listen(0);
  const port = (listener.address() as AddressInfo).port;

  return {
    port,
    url(base) {
      const url = new URL(base);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.toString();
    },
    mode(next) {
      current = next;
      if (next === "refuse") resetAll();
      if (next === "pass") {
        // Pairs whose server side went away during a blackhole: tear down the client now, as the
        // close handler would have done had the mode been pass at the time.
        for (const pair of pairs) if (pair.server.destroyed) pair.client.destroy();
      }
      return applyListener();
    },
    reset: resetAll,
    connections: () => pairs.size,
    bytes: () => ({ ...counters }),
    close() {
      closed = true;
      resetAll();
      return applyListener();
    },
  };
}
