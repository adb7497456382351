// `bun bench/client-loop.ts [--rounds N] [--concurrency C]`: the delivery client alone, no storage.
// Closed POST loops to the bench receiver, alternated for N rounds so machine noise hits them all:
// Bun fetch, plain node:http with a keep-alive Agent, hookd's own createHttpClient() (from src,
// unchanged: address checks, deadline, abort signal, header and body capture), and the same plus
// signPayload() per request. Shows how much of the gap between a delivery drain and the POST
// ceiling is the client path. A profiling aid for BENCHMARKS.md, not part of `bun run bench`.
import { createHttpClient } from "../src/dispatcher/http-client.ts";
import { signPayload } from "../src/domain/signer.ts";
import { closedLoop, deliveryLike, fetchPoster, nodeHttpPoster } from "./load.ts";
import { spawnReceiver } from "./receiver.ts";
import { median } from "./stats.ts";

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const rounds = flag("rounds", 3);
const concurrency = flag("concurrency", 256);
const modes = ["fetch", "node:http", "hookd client", "hookd client + sign"] as const;
const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
const receiver = await spawnReceiver();
const rates = new Map<string, number[]>(modes.map((m) => [m, []]));
try {
  const [port] = await receiver.addOrigins(1, { kind: "fast" });
  const base = `http://127.0.0.1:${port}`;
  for (let round = 0; round < rounds; round++) {
    for (const mode of modes) {
      const client = createHttpClient({
        policy: { allowPrivateNetworks: true, allowedCidrs: [] },
        userAgent: "bench",
      });
      const plain = nodeHttpPoster(base, concurrency);
      const viaFetch = fetchPoster(base);
      try {
        const result = await closedLoop({
          concurrency,
          durationMs: 2000,
          warmupMs: 300,
          maxOps: 1_000_000,
          send: async (seq) => {
            const { body, headers } = deliveryLike(seq, `cl${round}${mode.length}`);
            if (mode === "fetch") return (await viaFetch("/w", body, headers)) < 300 ? 1 : 0;
            if (mode === "node:http") return (await plain("/w", body, headers)) < 300 ? 1 : 0;
            if (mode === "hookd client + sign")
              headers["webhook-signature"] = signPayload(
                [secret],
                headers["webhook-id"] as string,
                1_700_000_000,
                body,
              );
            const out = await client.send({ url: `${base}/w`, headers, body, timeoutMs: 10_000 });
            return out.statusCode === 200 ? 1 : 0;
          },
        });
        rates.get(mode)?.push(result.unitsPerSecond);
      } finally {
        client.close();
        plain.close();
      }
    }
  }
  for (const mode of modes) {
    const values = rates.get(mode) ?? [];
    process.stdout.write(
      `${mode.padEnd(22)} median ${Math.round(median(values))} req/s  (${values.map((v) => Math.round(v)).join(", ")})\n`,
    );
  }
} finally {
  await receiver.close();
}
process.exit(0);
