// What the HTTP layer is built from: passed in by the composition root (daemon.ts).
import type { Config } from "../config/schema.ts";
import type { EventCatalog } from "../domain/event-types.ts";
import type { Cidr } from "../domain/ip.ts";
import type { DataValidator } from "../domain/json-schema.ts";
import type { Metrics } from "../metrics.ts";
import type { Clock } from "../runtime/clock.ts";
import type { IdGenerator } from "../runtime/ids.ts";
import type { Logger } from "../runtime/logger.ts";
import type { Random } from "../runtime/random.ts";
import type { Store } from "../store/store.ts";
import type { Authenticator } from "./auth.ts";
import type { OAuthClients } from "./oauth-clients.ts";

export interface ReadinessCheck {
  name: string;
  /** Resolves when healthy; rejects with the reason otherwise. */
  check(): Promise<void>;
}

export interface HttpDeps {
  config: Config;
  store: Store;
  clock: Clock;
  random: Random;
  ids: IdGenerator;
  logger: Logger;
  catalog: EventCatalog;
  authenticator: Authenticator;
  /** The configured OAuth2 clients (POST /oauth/token); absent when there are none. */
  oauthClients?: OAuthClients;
  allowedCidrs: readonly Cidr[];
  version: string;
  readiness: readonly ReadinessCheck[];
  metrics: Metrics;
  /** JSON Schema validators of event data, by event type. */
  dataValidators: ReadonlyMap<string, DataValidator>;
  /** Tells the dispatcher that deliveries became due now. */
  wakeDispatcher(): void;
  /** How browsers reach this server (server.public_url, or from the bound address): portal links. */
  publicUrl(): string;
  /** Live instances sharing the database (1 on SQLite): each enforces its share of a key's rate limit. */
  instances?: () => number;
}
