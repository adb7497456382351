// A webhook receiver for the child-process tests: Bun.serve on 127.0.0.1, port 0, that counts
// deliveries by webhook-id and can answer slowly or hang; its hanging requests are let go when it
// closes. (test/support/receiver.ts is the scripted node:http receiver for the in-process tests.)
import type { Server } from "bun";

export type ReceiverMode = "ok" | "hang" | { delayMs: number };

export interface CountingReceiver {
  url: string;
  /** Requests seen per webhook-id. */
  seen: Map<string, number>;
  /** webhook-ids answered with a 2xx. */
  delivered: Set<string>;
  /** Requests received and not yet answered. */
  open(): number;
  /** Requests answered with a 2xx beyond the first per webhook-id. */
  duplicates(): number;
  setMode(mode: ReceiverMode): void;
  close(): Promise<void>;
}

/**
 * A webhook receiver on 127.0.0.1, port 0. `failFirst(id)` makes the first request for that id
 * answer 500, so some deliveries go through `retrying`.
 */
export function startCountingReceiver(
  options: { mode?: ReceiverMode; failFirst?: (id: string) => boolean } = {},
): CountingReceiver {
  let mode: ReceiverMode = options.mode ?? "ok";
  const seen = new Map<string, number>();
  const delivered = new Set<string>();
  const hanging = new Set<() => void>();
  let open = 0;
  let okAnswers = 0;

  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(request) {
      const id = request.headers.get("webhook-id") ?? "";
      await request.text();
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      open++;
      try {
        const current = mode;
        if (current === "hang") {
          await new Promise<void>((resolve) => hanging.add(resolve));
          return new Response("released", { status: 503 });
        }
        if (typeof current === "object") await Bun.sleep(current.delayMs);
        if (n === 1 && options.failFirst?.(id)) return new Response("try again", { status: 500 });
        okAnswers++;
        delivered.add(id);
        return new Response("ok");
      } finally {
        open--;
      }
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    seen,
    delivered,
    open: () => open,
    duplicates: () => okAnswers - delivered.size,
    setMode(next) {
      mode = next;
    },
    async close() {
      for (const release of hanging) release();
      hanging.clear();
      await server.stop(true);
    },
  };
}
