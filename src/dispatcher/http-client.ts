// The outbound HTTP client for attempts: keep-alive pools per origin (so hundreds of subscriber
// hosts keep their own warm connections), an address check on every resolution (the connection
// goes only to an address that was checked: no DNS rebinding), no redirects, a hard deadline, and
// the response body read up to 4 KiB. Plain http goes over the lean HTTP/1.1 client (http1.ts);
// https over node:https with one keep-alive Agent per origin and the check in its lookup.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import type { AttemptError } from "../domain/delivery.ts";
import { type AddressPolicy, addressBlockReason, parseIp } from "../domain/ip.ts";
import { connect, type Http1Answer, type Http1Connection, type Http1Outcome } from "./http1.ts";

export const RESPONSE_BODY_LIMIT = 4096;
const MAX_RESPONSE_HEADERS = 64;
const MAX_AGENTS = 2048;

export interface OutboundRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export interface OutboundResponse {
  durationMs: number;
  statusCode: number | null;
  headers: Record<string, string> | null;
  body: string | null;
  error: AttemptError | null;
  /** A human-readable cause for logs (never includes request headers). */
  detail?: string;
}

export interface HttpClient {
  send(request: OutboundRequest, signal?: AbortSignal): Promise<OutboundResponse>;
  /** Destroys every pooled connection. */
  close(): void;
  /** Origins with a pool, for tests and metrics. */
  poolCount(): number;
}

type Lookup = (
  hostname: string,
  options: { all?: boolean; family?: number },
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

export class BlockedAddressError extends Error {
  readonly code = "EBLOCKED";
}

export function createHttpClient(options: {
  policy: AddressPolicy;
  userAgent: string;
  /** Test seam: name resolution (defaults to the system resolver). */
  resolve?: (hostname: string) => Promise<LookupAddress[]>;
}): HttpClient {
  const agents = new Map<string, http.Agent>();
  const resolve =
    options.resolve ??
    ((hostname: string) =>
      new Promise<LookupAddress[]>((ok, fail) =>
        dnsLookup(hostname, { all: true }, (error, addresses) => (error ? fail(error) : ok(addresses))),
      ));

  // Resolves, refuses the whole name if any address is not allowed, and connects to a checked one.
  const checkedLookup: Lookup = (hostname, lookupOptions, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const usable = addresses.filter((a) => !lookupOptions.family || a.family === lookupOptions.family);
        if (usable.length === 0) {
          const error = new Error(`no address for ${hostname}`) as NodeJS.ErrnoException;
          error.code = "ENOTFOUND";
          return callback(error, []);
        }
        for (const address of usable) {
          const ip = parseIp(address.address);
          const reason = ip ? addressBlockReason(ip, options.policy) : "unparseable";
          if (reason)
            return callback(new BlockedAddressError(`${hostname} resolves to a ${reason} address`), []);
        }
        if (lookupOptions.all) return callback(null, usable);
        const first = usable[0] as LookupAddress;
        callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, []),
    );
  };

  // Resolves and checks like checkedLookup: the first address when every one is allowed.
  const checkedAddress = async (hostname: string): Promise<string> => {
    const literal = parseIp(hostname);
    if (literal) return hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
    const addresses = await resolve(hostname);
    if (addresses.length === 0)
      throw Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" });
    for (const address of addresses) {
      const ip = parseIp(address.address);
      const reason = ip ? addressBlockReason(ip, options.policy) : "unparseable";
      if (reason) throw new BlockedAddressError(`${hostname} resolves to a ${reason} address`);
    }
    return (addresses[0] as LookupAddress).address;
  };

  // Plain-http pools: idle connections per origin, least recently used origin first.
  const pools = new Map<string, Http1Connection[]>();
  const poolOf = (origin: string): Http1Connection[] => {
    let idle = pools.get(origin);
    if (idle) {
      pools.delete(origin);
      pools.set(origin, idle);
      return idle;
    }
    idle = [];
    pools.set(origin, idle);
    if (pools.size > MAX_AGENTS) {
      const [oldest, old] = pools.entries().next().value as [string, Http1Connection[]];
      pools.delete(oldest);
      for (const c of old.splice(0)) c.destroy();
    }
    return idle;
  };
  const forget = (idle: Http1Connection[]) => (c: Http1Connection) => {
    const at = idle.indexOf(c);
    if (at >= 0) idle.splice(at, 1);
  };
  const acquire = async (url: URL, fresh: boolean): Promise<{ c: Http1Connection; reused: boolean }> => {
    const idle = poolOf(url.host);
    if (!fresh) {
      for (let c = idle.pop(); c; c = idle.pop()) if (!c.closed) return { c, reused: true };
    }
    const port = url.port ? Number(url.port) : 80;
    const c = await connect(await checkedAddress(url.hostname), port, forget(idle));
    return { c, reused: false };
  };
  const release = (url: URL, c: Http1Connection) => {
    if (!c.closed) poolOf(url.host).push(c);
  };

  const agentFor = (url: URL): http.Agent => {
    const origin = `${url.protocol}//${url.host}`;
    let agent = agents.get(origin);
    if (agent) {
      agents.delete(origin); // re-insert: the map's order is least recently used first
      agents.set(origin, agent);
      return agent;
    }
    // As many idle sockets are kept as were busy at once (bounded by max_in_flight): closing the
    // surplus after each burst would pay new handshakes on the next one.
    const agentOptions = {
      keepAlive: true,
      keepAliveMsecs: 30_000,
      maxSockets: 1024,
      maxFreeSockets: 1024,
      timeout: 30_000,
    };
    agent = url.protocol === "https:" ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    agents.set(origin, agent);
    if (agents.size > MAX_AGENTS) {
      const [oldest, old] = agents.entries().next().value as [string, http.Agent];
      agents.delete(oldest);
      old.destroy();
    }
    return agent;
  };

  // Parsing a URL and judging an IP literal host is done once per URL, not per attempt.
  const targets = new Map<string, { url: URL; blocked: string | null } | null>();
  const targetOf = (text: string) => {
    let target = targets.get(text);
    if (target !== undefined) return target;
    try {
      const url = new URL(text);
      const literal = parseIp(url.hostname);
      const reason = literal ? addressBlockReason(literal, options.policy) : null;
      target = { url, blocked: reason ? `${url.hostname} is a ${reason} address` : null };
    } catch {
      target = null;
    }
    if (targets.size >= MAX_AGENTS) targets.clear();
    targets.set(text, target);
    return target;
  };

  /** One attempt over the lean client: see http1.ts. */
  function sendHttp1(
    url: URL,
    request: OutboundRequest,
    signal: AbortSignal | undefined,
    started: number,
  ): Promise<OutboundResponse> {
    const elapsed = () => Math.round(performance.now() - started);
    const bytes = requestBytes(url, request);
    if (typeof bytes === "string")
      return Promise.resolve({
        durationMs: elapsed(),
        statusCode: null,
        headers: null,
        body: null,
        error: "network",
        detail: bytes,
      });
    return new Promise<OutboundResponse>((done) => {
      let settled = false;
      let current: Http1Connection | null = null;
      const finish = (response: OutboundResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        signal?.removeEventListener("abort", onAbort);
        done(response);
      };
      const failure = (error: AttemptError, detail: string): OutboundResponse => ({
        durationMs: elapsed(),
        statusCode: null,
        headers: null,
        body: null,
        error,
        detail,
      });
      const answered = (answer: Http1Answer): OutboundResponse => {
        const redirect = answer.statusCode >= 300 && answer.statusCode < 400;
        return {
          durationMs: elapsed(),
          statusCode: answer.statusCode,
          headers: answer.headers,
          body: Buffer.from(answer.body).toString("utf8"),
          error: redirect ? "redirect" : null,
          ...(redirect
            ? { detail: `redirect to ${answer.headers.location ?? "(no location)"} not followed` }
            : {}),
        };
      };
      const deadline = setTimeout(() => {
        // Once the head is in, a deadline still reports the status and the body so far.
        const so = current?.snapshot() ?? null;
        current?.abandon();
        finish(so ? answered(so) : failure("timeout", `no answer within ${request.timeoutMs}ms`));
      }, request.timeoutMs);
      const onAbort = () => {
        current?.abandon();
        finish(failure("timeout", "aborted at shutdown"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });

      const onOutcome = (outcome: Http1Outcome, retry: () => void, mayRetry: boolean) => {
        current = null;
        if (outcome.kind === "answer" || outcome.kind === "partial") return finish(answered(outcome.answer));
        // A kept-alive connection the receiver closed while it sat idle: one new connection.
        if (mayRetry && (outcome.code === "ECONNRESET" || outcome.code === "EPIPE")) return retry();
        if (outcome.code === "invalid_response") return finish(failure("invalid_response", outcome.detail));
        const [kind, detail] = classify(Object.assign(new Error(outcome.detail), { code: outcome.code }));
        finish(failure(kind, detail));
      };
      const go = (fresh: boolean) => {
        acquire(url, fresh).then(
          ({ c, reused }) => {
            if (settled) return release(url, c);
            current = c;
            c.send(bytes, RESPONSE_BODY_LIMIT, {
              onDone: (outcome, reusable) => {
                if (reusable) release(url, c);
                if (settled) return;
                onOutcome(outcome, () => go(true), reused && !fresh && !c.answered);
              },
            });
          },
          (error: NodeJS.ErrnoException) => {
            const [kind, detail] = classify(error);
            finish(failure(kind, detail));
          },
        );
      };
      go(false);
    });
  }

  return {
    poolCount: () => agents.size + pools.size,
    close() {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
      for (const idle of pools.values()) for (const c of idle.splice(0)) c.destroy();
      pools.clear();
    },
    send(request, signal) {
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      const failure = (
        error: AttemptError,
        detail: string,
        statusCode: number | null = null,
      ): OutboundResponse => ({
        durationMs: elapsed(),
        statusCode,
        headers: null,
        body: null,
        error,
        detail,
      });

      const target = targetOf(request.url);
      if (target === null) return Promise.resolve(failure("network", "invalid URL"));
      if (target.blocked) return Promise.resolve(failure("blocked_address", target.blocked));
      const url = target.url;
      if (url.protocol === "http:") return sendHttp1(url, request, signal, started);

      return new Promise<OutboundResponse>((resolve) => {
        let settled = false;
        // The answer so far: once headers are in, a deadline or a cut body still reports them.
        let answer: {
          statusCode: number;
          headers: Record<string, string>;
          chunks: Buffer[];
          size: number;
        } | null = null;
        const finish = (response: OutboundResponse) => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          signal?.removeEventListener("abort", onAbort);
          resolve(response);
        };
        const finishWithAnswer = (cut: boolean) => {
          if (!answer) return;
          // A body cut short leaves the socket unusable: it is destroyed, not pooled.
          if (cut) req.destroy();
          const { statusCode, headers } = answer;
          const body = Buffer.concat(answer.chunks).subarray(0, RESPONSE_BODY_LIMIT).toString("utf8");
          const redirect = statusCode >= 300 && statusCode < 400;
          finish({
            durationMs: elapsed(),
            statusCode,
            headers,
            body,
            error: redirect ? "redirect" : null,
            ...(redirect
              ? { detail: `redirect to ${headers.location ?? "(no location)"} not followed` }
              : {}),
          });
        };
        const transport = url.protocol === "https:" ? https : http;
        const req = transport.request(
          url,
          {
            method: "POST",
            agent: agentFor(url),
            lookup: checkedLookup as never,
            headers: { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) },
          },
          (res) => {
            const headers: Record<string, string> = {};
            let n = 0;
            for (const [name, value] of Object.entries(res.headers)) {
              if (value === undefined || n++ >= MAX_RESPONSE_HEADERS) continue;
              headers[name] = (Array.isArray(value) ? value.join(", ") : value).slice(0, 1024);
            }
            const current = { statusCode: res.statusCode ?? 0, headers, chunks: [] as Buffer[], size: 0 };
            answer = current;
            res.on("data", (chunk: Buffer) => {
              if (current.size < RESPONSE_BODY_LIMIT) current.chunks.push(chunk);
              current.size += chunk.length;
              if (current.size > RESPONSE_BODY_LIMIT) finishWithAnswer(true);
            });
            res.on("end", () => finishWithAnswer(false));
            res.on("error", () => finishWithAnswer(true));
            res.on("aborted", () => finishWithAnswer(true));
          },
        );
        const deadline = setTimeout(() => {
          if (answer) return finishWithAnswer(true);
          finish(failure("timeout", `no answer within ${request.timeoutMs}ms`));
          req.destroy();
        }, request.timeoutMs);
        const onAbort = () => {
          finish(failure("timeout", "aborted at shutdown"));
          req.destroy();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        req.on("error", (error: NodeJS.ErrnoException) => {
          if (answer) return finishWithAnswer(true);
          const [kind, detail] = classify(error);
          finish(failure(kind, detail));
        });
        req.end(request.body);
      });
    },
  };
}

/** Maps a socket or TLS error to an attempt error class. */
export function classify(error: NodeJS.ErrnoException): [AttemptError, string] {
  const code = error.code ?? "";
  const message = error.message ?? String(error);
  if (error instanceof BlockedAddressError || code === "EBLOCKED") return ["blocked_address", message];
  if (code === "ECONNREFUSED") return ["connection_refused", message];
  if (code === "ECONNRESET" || code === "EPIPE" || /socket hang up/i.test(message))
    return ["connection_reset", message];
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_FAIL" || code === "EAI_NODATA")
    return ["dns", message];
  if (code === "ETIMEDOUT" || code === "ESOCKETTIMEDOUT") return ["timeout", message];
  if (
    /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH|ERR_TLS/i.test(code) ||
    /certificate|tls|ssl/i.test(message)
  ) {
    return ["tls", message];
  }
  if (code.startsWith("HPE_") || /parse error|invalid http|malformed/i.test(message))
    return ["invalid_response", message];
  return ["network", message || code];
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const UNSAFE_HEADER = /[\r\n\x00]/;

/** The request head and body as bytes, or why a header cannot be sent. */
function requestBytes(url: URL, request: OutboundRequest): Uint8Array | string {
  let head = `POST ${url.pathname || "/"}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  if (url.username || url.password) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    head += `authorization: Basic ${Buffer.from(credentials).toString("base64")}\r\n`;
  }
  for (const name in request.headers) {
    const value = request.headers[name] as string;
    if (UNSAFE_HEADER.test(name) || UNSAFE_HEADER.test(value)) return `invalid header ${name}`;
    head += `${name}: ${value}\r\n`;
  }
  head += `content-length: ${Buffer.byteLength(request.body)}\r\nconnection: keep-alive\r\n\r\n`;
  // Header values may carry obs-text (bytes 0x80–0xff, one per character); the body is UTF-8.
  return Buffer.concat([Buffer.from(head, "latin1"), Buffer.from(request.body)]);
}
