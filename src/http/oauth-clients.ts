// The configured OAuth2 clients (SPEC §2 OAuth2 client credentials): checking a client's secret in
// constant time, minting access tokens, and turning a presented token back into a principal. A token
// is honoured only while its client is in this instance's config with the same secret, tenant and mode;
// its scopes are cut to the client's current ones.
import type { OAuthClientConfig, Scope } from "../config/schema.ts";
import { readAccessToken, secretFingerprint, signAccessToken } from "../domain/access-token.ts";
import type { Mode } from "../domain/mode.ts";
import { digestsEqual, sha256Hex } from "../domain/secrets.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Principal } from "./context.ts";

export type GrantScope = Scope | "*";

export interface OAuthClient {
  id: string;
  scopes: readonly GrantScope[];
  tenant?: string;
  mode: Mode;
}

export interface IssuedToken {
  accessToken: string;
  /** Whole seconds until it expires (never more than it has left). */
  expiresIn: number;
  scopes: readonly GrantScope[];
}

export interface OAuthClients {
  /** The configured client with this id, or undefined. */
  find(clientId: string): OAuthClient | undefined;
  /** Whether `secret` is the client's: SHA-256 digests compared in constant time. */
  secretMatches(client: OAuthClient, secret: string): boolean;
  issue(client: OAuthClient, scopes: readonly GrantScope[]): IssuedToken;
  /** The principal of a valid, unexpired token of a current client, or null. */
  identify(token: string): Principal | null;
}

interface KnownClient extends OAuthClient {
  secretSha256: string;
  fingerprint: string;
}

/** Whether holding `granted` covers `scope`. */
export const covers = (granted: readonly GrantScope[], scope: GrantScope): boolean =>
  granted.includes("*") || granted.includes(scope);

export function createOAuthClients(options: {
  clients: readonly OAuthClientConfig[];
  /** 32 bytes shared by every instance over the database (daemon.ts keeps it in the settings). */
  signingKey: Uint8Array;
  ttlMs: number;
  clock: Clock;
}): OAuthClients {
  const { signingKey, ttlMs, clock } = options;
  const known = new Map<string, KnownClient>();
  for (const client of options.clients) {
    const secretSha256 = client.client_secret_sha256 ?? sha256Hex(client.client_secret as string);
    known.set(client.client_id, {
      id: client.client_id,
      scopes: client.scopes,
      ...(client.tenant !== undefined ? { tenant: client.tenant } : {}),
      mode: client.mode,
      secretSha256,
      fingerprint: secretFingerprint(signingKey, secretSha256),
    });
  }

  return {
    find: (clientId) => known.get(clientId),
    secretMatches(client, secret) {
      const expected = known.get(client.id)?.secretSha256;
      return expected !== undefined && digestsEqual(sha256Hex(secret), expected);
    },
    issue(client, scopes) {
      const current = known.get(client.id) as KnownClient;
      const expiresAt = clock.now() + ttlMs;
      const accessToken = signAccessToken(signingKey, {
        clientId: current.id,
        scopes: [...scopes],
        ...(current.tenant !== undefined ? { tenant: current.tenant } : {}),
        mode: current.mode,
        expiresAt,
        fingerprint: current.fingerprint,
      });
      return { accessToken, expiresIn: Math.max(1, Math.floor(ttlMs / 1000)), scopes };
    },
    identify(token) {
      const claims = readAccessToken(signingKey, token);
      if (!claims || clock.now() >= claims.expiresAt) return null;
      const client = known.get(claims.clientId);
      if (
        !client ||
        client.fingerprint !== claims.fingerprint ||
        client.tenant !== claims.tenant ||
        client.mode !== claims.mode
      )
        return null;
      // A client whose scopes were narrowed since keeps only what it still has.
      const scopes = claims.scopes.includes("*")
        ? [...client.scopes]
        : claims.scopes.filter((scope) => covers(client.scopes, scope as GrantScope));
      if (scopes.length === 0) return null;
      return {
        name: client.id,
        kind: "token",
        scopes: new Set(scopes as GrantScope[]),
        ...(client.tenant !== undefined ? { tenantId: client.tenant } : {}),
        mode: client.mode,
      };
    },
  };
}
