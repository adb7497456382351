// The lean HTTP/1.1 client (src/dispatcher/http1.ts, behind createHttpClient for http URLs)
// against hostile answers from a raw TCP server on 127.0.0.1: malformed status lines, huge or
// broken headers, chunked encoding errors, bodies past the 4 KiB cap, lying content-lengths, early
// closes, resets, slowloris drips and silence, cut at random byte boundaries. Whatever comes, an
// attempt resolves (never throws) by its deadline, with a known error or a status, a body of at
// most 4 KiB, and no socket left open once the client is closed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import fc from "fast-check";
import { createHttpClient, RESPONSE_BODY_LIMIT } from "../../src/dispatcher/http-client.ts";
import { ATTEMPT_ERRORS } from "../../src/domain/delivery.ts";
import { waitFor } from "../support/wait-for.ts";

type Ending = "close" | "reset" | "hang" | "keep";
interface Script {
  /** The bytes to send, in pieces, each after a pause (ms). */
  pieces: { bytes: Uint8Array; pauseMs: number }[];
  ending: Ending;
}

const TIMEOUT_MS = 250;
let server: TCPSocketListener<{ buffer: string; scripted: boolean }>;
let script: Script = { pieces: [], ending: "close" };
const open = new Set<Socket<unknown>>();

beforeAll(() => {
  server = Bun.listen<{ buffer: string; scripted: boolean }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { buffer: "", scripted: false };
        open.add(socket);
      },
      data(socket, data) {
        socket.data.buffer += Buffer.from(data).toString("latin1");
        // Answer each complete request (head + content-length body) with the current script.
        const headEnd = socket.data.buffer.indexOf("\r\n\r\n");
        if (headEnd < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(socket.data.buffer)?.[1] ?? 0);
        if (socket.data.buffer.length < headEnd + 4 + length) return;
        socket.data.buffer = socket.data.buffer.slice(headEnd + 4 + length);
        void play(socket, script);
      },
      close(socket) {
        open.delete(socket);
      },
      error(socket) {
        open.delete(socket);
      },
    },
  });
});

afterAll(() => {
  server.stop(true);
});

async function play(socket: Socket<unknown>, s: Script): Promise<void> {
  for (const piece of s.pieces) {
    if (piece.pauseMs > 0) await Bun.sleep(piece.pauseMs);
    if (!open.has(socket)) return;
    socket.write(piece.bytes);
  }
  if (!open.has(socket)) return;
  if (s.ending === "close") socket.end();
  else if (s.ending === "reset") socket.terminate();
  // hang: say nothing more; keep: a well-framed answer, the connection stays for the next one.
}

const enc = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));
const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/);
const anyText = (max: number) => fc.string({ unit: "binary-ascii", maxLength: max });

const statusLine = fc.oneof(
  fc.integer({ min: 100, max: 599 }).map((code) => `HTTP/1.1 ${code} Whatever`),
  fc.constantFrom("HTTP/1.1 200 OK", "HTTP/1.0 200 OK", "HTTP/1.1 302 Found", "HTTP/1.1 100 Continue"),
  fc.constantFrom("HTTP/1.1 99 Low", "HTTP/2 200", "HTTP/1.1 2000 Big", "ICY 200 OK", "HTTP/1.1200", ""),
  anyText(40),
);

const header = fc.oneof(
  fc.tuple(token, anyText(30)).map(([n, v]) => `${n}: ${v.replace(/[\r\n]/g, "")}`),
  fc.constantFrom("no-colon-here", ": empty-name", "bad name: x", "x-nul: a\u0000b"),
  fc.nat({ max: 40_000 }).map((n) => `x-huge: ${"h".repeat(n)}`),
);

// A body with its framing: honest, lying, chunked (valid or broken), unframed, or huge.
const framed = fc.oneof(
  anyText(200).map((b) => ({ headers: [`content-length: ${b.length}`], body: b })),
  fc.tuple(anyText(200), fc.integer({ min: -5, max: 50 })).map(([b, d]) => ({
    headers: [`content-length: ${Math.max(0, b.length + d)}`],
    body: b,
  })),
  fc.constantFrom("abc", "-1", "1e3", "12, 13", "99999999999999999999").map((v) => ({
    headers: [`content-length: ${v}`],
    body: "x",
  })),
  fc.array(anyText(50), { maxLength: 5 }).map((chunks) => ({
    headers: ["transfer-encoding: chunked"],
    body: `${chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join("")}0\r\n\r\n`,
  })),
  fc
    .constantFrom(
      "zz\r\nabc\r\n",
      "5\r\nab\r\n",
      "3\r\nabcXY",
      "fffffffffffff\r\n",
      "3;ext\r\nabc\r\n0\r\n\r\n",
    )
    .map((body) => ({ headers: ["transfer-encoding: chunked"], body })),
  fc.nat({ max: 20_000 }).map((n) => ({ headers: [`content-length: ${n}`], body: "b".repeat(n) })),
  fc.nat({ max: 20_000 }).map((n) => ({ headers: [] as string[], body: "u".repeat(n) })),
  fc.constant({ headers: ["transfer-encoding: gzip"], body: "whatever" }),
);

const answer = fc
  .record({
    status: statusLine,
    headers: fc.array(header, { maxLength: 6 }),
    framed,
    lineEnd: fc.constantFrom("\r\n", "\r\n", "\n"),
    truncateAt: fc.option(fc.nat(), { nil: undefined }),
  })
  .map(({ status, headers, framed, lineEnd, truncateAt }) => {
    const text = `${[status, ...headers, ...framed.headers].join(lineEnd)}${lineEnd}${lineEnd}${framed.body}`;
    return truncateAt === undefined ? text : text.slice(0, truncateAt % (text.length + 1));
  });

const scriptArb: fc.Arbitrary<Script> = fc.oneof(
  // The answer cut into pieces at random boundaries, with short pauses.
  fc
    .record({
      text: answer,
      cuts: fc.array(fc.nat(), { maxLength: 6 }),
      pauseMs: fc.constantFrom(0, 0, 1, 5),
      ending: fc.constantFrom<Ending>("close", "reset", "hang", "keep"),
    })
    .map(({ text, cuts, pauseMs, ending }) => {
      const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const pieces: Script["pieces"] = [];
      let from = 0;
      for (const cut of [...at, text.length]) {
        if (cut > from) pieces.push({ bytes: enc(text.slice(from, cut)), pauseMs });
        from = cut;
      }
      return { pieces, ending };
    }),
  // Slowloris: a valid start, then a byte at a time past the deadline.
  fc
    .constantFrom("HTTP/1.1 200 OK\r\nx-slow: ", "HTTP/1.1 500 Oops\r\ncontent-length: 100\r\n\r\nab")
    .map((start) => ({
      pieces: [
        { bytes: enc(start), pauseMs: 0 },
        ...Array.from({ length: 40 }, () => ({ bytes: enc("z"), pauseMs: 10 })),
      ],
      ending: "hang" as Ending,
    })),
  fc.constant<Script>({ pieces: [], ending: "hang" }),
  fc.constant<Script>({ pieces: [], ending: "close" }),
  fc.constant<Script>({ pieces: [], ending: "reset" }),
);

test("hostile answers: every attempt resolves by its deadline with a known outcome; no socket leaks", async () => {
  const client = createHttpClient({
    policy: { allowPrivateNetworks: true, allowedCidrs: [] },
    userAgent: "fuzz",
  });
  const url = `http://127.0.0.1:${server.port}/hook`;
  try {
    await fc.assert(
      fc.asyncProperty(scriptArb, async (s) => {
        script = s;
        const t0 = performance.now();
        const response = await client.send({
          url,
          headers: { "x-a": "1" },
          body: '{"x":1}',
          timeoutMs: TIMEOUT_MS,
        });
        const took = performance.now() - t0;
        // The deadline bounds every attempt (with room for a loaded machine's timers).
        expect(took).toBeLessThan(TIMEOUT_MS + 750);
        if (response.error !== null) expect(ATTEMPT_ERRORS).toContain(response.error);
        if (response.statusCode !== null) {
          expect(response.statusCode).toBeGreaterThanOrEqual(200);
          expect(response.statusCode).toBeLessThanOrEqual(999);
        } else expect(response.error).not.toBeNull();
        if (response.body !== null)
          expect(Buffer.byteLength(response.body, "latin1")).toBeLessThanOrEqual(RESPONSE_BODY_LIMIT * 3);
        expect(Object.keys(response.headers ?? {}).length).toBeLessThanOrEqual(66);
      }),
      { numRuns: 150 },
    );
    // A connection is only kept when its answer was whole: with the server answering well, the
    // client keeps working on whatever it kept.
    script = { pieces: [{ bytes: enc("HTTP/1.1 204 No Content\r\n\r\n"), pauseMs: 0 }], ending: "keep" };
    for (let i = 0; i < 5; i++) {
      const ok = await client.send({ url, headers: {}, body: "{}", timeoutMs: 1000 });
      expect(ok).toMatchObject({ statusCode: 204, error: null });
    }
  } finally {
    client.close();
  }
  await waitFor(() => open.size === 0, { timeoutMs: 3000, what: "every connection to close" });
}, 120_000);

test("a body past the cap is cut at 4 KiB and the connection dropped; one within it keeps the connection", async () => {
  const client = createHttpClient({
    policy: { allowPrivateNetworks: true, allowedCidrs: [] },
    userAgent: "fuzz",
  });
  const url = `http://127.0.0.1:${server.port}/hook`;
  try {
    const big = "y".repeat(10_000);
    script = {
      pieces: [{ bytes: enc(`HTTP/1.1 500 No\r\ncontent-length: ${big.length}\r\n\r\n${big}`), pauseMs: 0 }],
      ending: "keep",
    };
    const cut = await client.send({ url, headers: {}, body: "{}", timeoutMs: 1000 });
    expect(cut).toMatchObject({ statusCode: 500, body: "y".repeat(RESPONSE_BODY_LIMIT) });
    await waitFor(() => open.size === 0, { timeoutMs: 3000, what: "the cut connection to close" });
    script = {
      pieces: [{ bytes: enc("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), pauseMs: 0 }],
      ending: "keep",
    };
    for (let i = 0; i < 3; i++)
      expect(await client.send({ url, headers: {}, body: "{}", timeoutMs: 1000 })).toMatchObject({
        statusCode: 200,
        body: "ok",
      });
    expect(open.size).toBe(1);
  } finally {
    client.close();
  }
  await waitFor(() => open.size === 0, { timeoutMs: 3000, what: "every connection to close" });
});
