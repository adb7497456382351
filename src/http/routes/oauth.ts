// POST /oauth/token: the OAuth2 client credentials grant (RFC 6749 §4.4), with its errors in RFC 6749
// §5.2's shape rather than the API's. Order of checks: the body, grant_type, how the client
// authenticates, the per-client rate limit, the secret, the scope.
import type { Context } from "hono";
import { z } from "zod";
import { SCOPES } from "../../config/schema.ts";
import { ApiError } from "../../domain/errors.ts";
import type { Api } from "../api.ts";
import { readBody } from "../body.ts";
import type { AppEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { covers, type GrantScope, type OAuthClient, type OAuthClients } from "../oauth-clients.ts";
import type { RateLimiter } from "../rate-limit.ts";

const KNOWN_SCOPES = new Set<string>([...SCOPES, "*"]);

type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "rate_limited";

class OAuthError extends Error {
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    readonly status: 400 | 401 | 429 = code === "invalid_client" ? 401 : 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

const invalidRequest = (description: string) => new OAuthError("invalid_request", description);
const invalidClient = (description: string) =>
  new OAuthError("invalid_client", description, 401, { "WWW-Authenticate": 'Basic realm="hookd"' });

/** The parameters hookd reads; a request naming one of them twice is malformed (RFC 6749 §3.2). */
const PARAMETERS = ["grant_type", "scope", "client_id", "client_secret"] as const;
type Parameters = Partial<Record<(typeof PARAMETERS)[number], string>>;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The request's parameters from a form-encoded or JSON body; unknown ones are ignored (§3.2). */
async function readParameters(c: Context<AppEnv>, limit: number): Promise<Parameters> {
  let bytes: Uint8Array;
  try {
    bytes = await readBody(c, limit);
  } catch (error) {
    // Too large keeps the API's 413; a body cut short is a malformed request.
    if (error instanceof ApiError && error.code === "payload_too_large") throw error;
    throw invalidRequest("the request body could not be read");
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw invalidRequest("the request body is not valid UTF-8");
  }
  const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  const found: Parameters = {};
  if (type === "application/x-www-form-urlencoded") {
    const form = new URLSearchParams(text);
    for (const name of PARAMETERS) {
      const values = form.getAll(name).filter((value) => value !== "");
      if (values.length > 1) throw invalidRequest(`the parameter ${name} is given more than once`);
      if (values[0] !== undefined) found[name] = values[0];
    }
    return found;
  }
  if (type === "application/json") {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw invalidRequest("the request body is not valid JSON");
    }
    if (!body || typeof body !== "object" || Array.isArray(body))
      throw invalidRequest("the request body must be a JSON object");
    for (const name of PARAMETERS) {
      const value = (body as Record<string, unknown>)[name];
      if (value === undefined || value === null || value === "") continue;
      if (typeof value !== "string") throw invalidRequest(`the parameter ${name} must be a string`);
      found[name] = value;
    }
    return found;
  }
  throw invalidRequest("the body must be application/x-www-form-urlencoded (or application/json)");
}

/** `application/x-www-form-urlencoded` decoding (RFC 6749 §2.3.1); null when the escapes are broken. */
function formDecode(text: string): string | null {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return null;
  }
}

interface PresentedCredentials {
  /** Client ids to look up, most likely first (Basic: decoded, then as sent). */
  ids: string[];
  secrets: string[];
}

/** How the client authenticates: HTTP Basic or client_id and client_secret in the body, never both. */
function presentedCredentials(c: Context<AppEnv>, params: Parameters): PresentedCredentials {
  const authorization = c.req.header("authorization");
  if (authorization === undefined) {
    if (params.client_id === undefined)
      throw invalidClient("client authentication is required: HTTP Basic, or client_id and client_secret");
    if (params.client_secret === undefined)
      throw invalidClient("client_secret is required with client_id (public clients are not supported)");
    return { ids: [params.client_id], secrets: [params.client_secret] };
  }
  const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(authorization);
  if (!match) throw invalidClient("the Authorization header must be 'Basic base64(client_id:client_secret)'");
  let decoded: string;
  try {
    decoded = decoder.decode(Buffer.from(match[1] as string, "base64"));
  } catch {
    throw invalidClient("the Basic credentials are not valid UTF-8");
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) throw invalidClient("the Basic credentials must be client_id:client_secret");
  if (params.client_secret !== undefined) {
    throw invalidRequest(
      "use one client authentication method: HTTP Basic or client_id and client_secret in the body, not both",
    );
  }
  const rawId = decoded.slice(0, colon);
  const rawSecret = decoded.slice(colon + 1);
  // RFC 6749 §2.3.1 form-encodes both before Basic; many clients (curl -u) send them as they are.
  const ids = [...new Set([formDecode(rawId) ?? rawId, rawId])];
  const secrets = [...new Set([formDecode(rawSecret) ?? rawSecret, rawSecret])];
  if (params.client_id !== undefined && !ids.includes(params.client_id))
    throw invalidRequest("client_id in the body differs from the one in the Authorization header");
  return { ids, secrets };
}

/** The scopes asked for: a space-separated subset of the client's; absent, all of them. */
function grantedScopes(client: OAuthClient, requested: string | undefined): readonly GrantScope[] {
  if (requested === undefined || requested.trim() === "") return client.scopes;
  const scopes = [...new Set(requested.trim().split(/ +/))];
  for (const scope of scopes) {
    // Input is not echoed back (it could be a misplaced secret): only scope names hookd knows.
    if (!KNOWN_SCOPES.has(scope)) throw new OAuthError("invalid_scope", "scope names an unknown scope");
    if (!covers(client.scopes, scope as GrantScope))
      throw new OAuthError("invalid_scope", `the scope '${scope}' is not granted to this client`);
  }
  return scopes as GrantScope[];
}

const OAUTH_ERROR = z.object({
  error: z.enum([
    "invalid_request",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "rate_limited",
  ]),
  error_description: z.string(),
});

export function registerOAuthRoutes(
  api: Api,
  deps: HttpDeps,
  clients: OAuthClients | undefined,
  rateLimiter: RateLimiter,
): void {
  const limit = deps.config.limits.max_payload_bytes;
  api.route(
    {
      method: "post",
      path: "/oauth/token",
      summary: "Get an access token with client credentials (RFC 6749 §4.4)",
      tag: "OAuth2",
      auth: null,
      security: [{ clientBasic: [] }, {}],
      errorFormat: "oauth",
      bodyTypes: ["application/x-www-form-urlencoded", "application/json"],
      body: z.object({
        grant_type: z.literal("client_credentials"),
        scope: z.string().optional().describe("space-separated subset of the client's scopes; absent: all"),
        client_id: z.string().optional().describe("with client_secret, instead of HTTP Basic"),
        client_secret: z.string().optional(),
      }),
      responses: {
        200: {
          description: "An access token for /v1 (Cache-Control: no-store)",
          schema: z.object({
            access_token: z.string(),
            token_type: z.literal("Bearer"),
            expires_in: z.number().int(),
            scope: z.string(),
          }),
        },
        400: { description: "invalid_request, unsupported_grant_type or invalid_scope", schema: OAUTH_ERROR },
        401: { description: "invalid_client (with WWW-Authenticate: Basic)", schema: OAUTH_ERROR },
        429: { description: "Too many token requests for this client", schema: OAUTH_ERROR },
      },
    },
    async (c) => {
      c.header("Cache-Control", "no-store");
      c.header("Pragma", "no-cache");
      try {
        const params = await readParameters(c, limit);
        if (params.grant_type === undefined) throw invalidRequest("grant_type is required");
        if (params.grant_type !== "client_credentials") {
          throw new OAuthError("unsupported_grant_type", "grant_type must be client_credentials");
        }
        const presented = presentedCredentials(c, params);
        const client = presented.ids.map((id) => clients?.find(id)).find((found) => found !== undefined);
        if (!client || !clients) throw invalidClient("client authentication failed");
        // Counted before the secret is checked: guessing a client's secret is limited too.
        const decision = rateLimiter.take("token", client.id);
        for (const [name, value] of Object.entries(decision.headers)) c.header(name, value);
        if (!decision.allowed) {
          throw new OAuthError(
            "rate_limited",
            `too many token requests for this client; retry in ${decision.retryAfter}s`,
            429,
          );
        }
        const matches = presented.secrets.map((secret) => clients.secretMatches(client, secret));
        if (!matches.includes(true)) throw invalidClient("client authentication failed");
        const issued = clients.issue(client, grantedScopes(client, params.scope));
        c.set("principal", {
          name: client.id,
          kind: "token",
          scopes: new Set(issued.scopes),
          mode: client.mode,
        });
        return c.json({
          access_token: issued.accessToken,
          token_type: "Bearer",
          expires_in: issued.expiresIn,
          scope: issued.scopes.join(" "),
        });
      } catch (error) {
        if (!(error instanceof OAuthError)) throw error;
        for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
        return c.json({ error: error.code, error_description: error.description }, error.status);
      }
    },
  );
}
