// Model-based test of the delivery state machine (SPEC §2 Deliveries, §3 Leases) through each store
// driver on a manual clock, reading what it stored through exportRows only: random sequences of
// ingest, claim, settle (by the lease owner or a stale one), time passing, lease release, requeue,
// recover, delete, disable and enable, each checked against an explicit model. Invariants: a final
// delivery becomes claimable again only by requeue or recover; a claim never takes a delivery under
// someone else's live lease; a settle applies only for the owner named in it; attempts never go
// down; a subscription's next_due_at is never late.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { DeliveryStatus } from "../../../src/domain/delivery.ts";
import { createManualClock, type ManualClock } from "../../../src/runtime/clock.ts";
import { createIdGenerator, type IdGenerator } from "../../../src/runtime/ids.ts";
import { cryptoRandom } from "../../../src/runtime/random.ts";
import type { AttemptResult, HealthPolicy, Settlement, Store } from "../../../src/store/store.ts";
import { allRows, drainFinals, STORE_DRIVERS, type StoreDriver } from "../../support/stores.ts";

const T0 = Date.UTC(2026, 0, 1);
const TENANT = "default";
/** Three subscriptions with different caps and timeouts (the lease covers timeout + a margin). */
const WEBHOOKS = [
  { maxInFlight: 1, timeoutSeconds: 1 },
  { maxInFlight: 2, timeoutSeconds: 5 },
  { maxInFlight: 8, timeoutSeconds: 30 },
] as const;
const HEALTH: HealthPolicy = { disableAfterFailures: 4, disableAfterMs: 60_000 };
const QUEUED: readonly DeliveryStatus[] = ["pending", "retrying"];
const isQueued = (status: DeliveryStatus) => QUEUED.includes(status);

interface ModelWebhook {
  id: string;
  exists: boolean;
  enabled: boolean;
  failures: number;
  healthSince: number;
}

interface ModelDelivery {
  id: string;
  webhook: number;
  status: DeliveryStatus;
  attempts: number;
  series: number;
  /** next_attempt_at: when due, or when the lease ends; null once final. */
  dueAt: number | null;
  owner: string | null;
  createdAt: number;
  /** Every owner that ever leased it, for stale settles. */
  pastOwners: string[];
}

interface Model {
  now: number;
  webhooks: ModelWebhook[];
  deliveries: ModelDelivery[];
  claims: number;
}

interface Real {
  store: Store;
  clock: ManualClock;
  ids: IdGenerator;
  /** What the store reported through onFinal (delete and disable), drained by the commands. */
  finals: { status: string; count: number }[];
}

interface Row {
  id: string;
  webhook_id: string;
  status: DeliveryStatus;
  attempts: number;
  series_attempts: number;
  next_attempt_at: number | null;
  lease_owner: string | null;
}

const modelClaimable = (m: Model, d: ModelDelivery) => {
  const w = m.webhooks[d.webhook]!;
  return w.exists && w.enabled && isQueued(d.status) && d.dueAt !== null && d.dueAt <= m.now;
};

/** Deliveries of a subscription under a lease that has not ended. */
const liveLeases = (m: Model, webhook: number) =>
  m.deliveries.filter(
    (d) =>
      d.webhook === webhook && d.owner !== null && isQueued(d.status) && d.dueAt !== null && d.dueAt > m.now,
  ).length;

/** The shortest lease a claim may give: the configured lease, and never less than the attempt's timeout. */
const leaseFloor = (m: Model, webhook: number, leaseMs: number) =>
  m.now + Math.max(leaseMs, WEBHOOKS[webhook]!.timeoutSeconds * 1000);

/** The deliveries as stored, by id. */
async function readRows(real: Real): Promise<Row[]> {
  return (await allRows(real.store, "deliveries"))
    .map((row) => ({
      id: row.id as string,
      webhook_id: row.webhook_id as string,
      status: row.status as DeliveryStatus,
      attempts: row.attempts as number,
      series_attempts: row.series_attempts as number,
      next_attempt_at: row.next_attempt_at as number | null,
      lease_owner: row.lease_owner as string | null,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

interface WebhookRow {
  id: string;
  enabled: number;
  next_due_at: number | null;
  consecutive_failures: number;
}

/** The store's state equals the model's; `revived` lists the deliveries allowed to leave a final state. */
async function compare(
  m: Model,
  real: Real,
  before: Map<string, Row>,
  revived: ReadonlySet<string> = new Set(),
) {
  expect(real.clock.now()).toBe(m.now);
  const rows = await readRows(real);
  expect(rows.map((row) => row.id)).toEqual(m.deliveries.map((d) => d.id).sort());
  const byId = new Map(m.deliveries.map((d) => [d.id, d]));
  const webhooks = new Map(
    (await allRows(real.store, "webhooks")).map((row) => {
      const w = row as unknown as WebhookRow;
      return [w.id, w];
    }),
  );
  for (const row of rows) {
    const d = byId.get(row.id)!;
    expect({
      id: row.id,
      status: row.status,
      attempts: row.attempts,
      series: row.series_attempts,
      dueAt: row.next_attempt_at,
      owner: row.lease_owner,
    }).toEqual({
      id: d.id,
      status: d.status,
      attempts: d.attempts,
      series: d.series,
      dueAt: d.dueAt,
      owner: d.owner,
    });
    const webhook = webhooks.get(row.webhook_id);
    const claimable =
      webhook?.enabled === 1 &&
      isQueued(row.status) &&
      row.next_attempt_at !== null &&
      row.next_attempt_at <= m.now;
    expect(claimable).toBe(modelClaimable(m, d));
    // A queued delivery always has a due time, and its subscription's hint is never later than it.
    if (isQueued(row.status)) {
      expect(row.next_attempt_at).not.toBeNull();
      if (webhook) {
        expect(webhook.next_due_at).not.toBeNull();
        expect(webhook.next_due_at as number).toBeLessThanOrEqual(row.next_attempt_at as number);
      }
    } else {
      expect(row.next_attempt_at).toBeNull();
      expect(row.lease_owner).toBeNull();
    }
    const previous = before.get(row.id);
    if (previous) {
      expect(row.attempts).toBeGreaterThanOrEqual(previous.attempts);
      if (!isQueued(previous.status) && !revived.has(row.id)) expect(isQueued(row.status)).toBe(false);
    }
  }
  m.webhooks.forEach((w) => {
    const row = webhooks.get(w.id);
    expect(row !== undefined).toBe(w.exists);
    if (row) {
      expect(row.enabled === 1).toBe(w.enabled);
      expect(row.consecutive_failures).toBe(w.failures);
    }
  });
}

const snapshot = async (real: Real) => new Map((await readRows(real)).map((row) => [row.id, row]));

function disableInModel(m: Model, webhook: number) {
  m.webhooks[webhook]!.enabled = false;
  for (const d of m.deliveries) {
    if (d.webhook === webhook && isQueued(d.status))
      Object.assign(d, { status: "failed", dueAt: null, owner: null });
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

function command(
  name: string,
  check: (m: Model) => boolean,
  run: (m: Model, real: Real) => Promise<ReadonlySet<string> | undefined>,
): Cmd {
  return {
    check,
    async run(m, real) {
      const before = await snapshot(real);
      const revived = await run(m, real);
      await compare(m, real, before, revived);
    },
    toString: () => name,
  };
}

const pick = <T>(items: readonly T[], index: number): T => items[index % items.length]!;

const ingest = fc
  .array(fc.integer({ min: 0, max: WEBHOOKS.length - 1 }), { minLength: 1, maxLength: 4 })
  .map((ws) =>
    command(
      `ingest(${ws.map((w) => `w${w}`).join(", ")})`,
      () => true,
      async (m, real) => {
        const events = ws.map((w) => ({
          id: real.ids.next("evt"),
          type: `type.w${w}`,
          accountId: null,
          payload: "{}",
          createdAt: m.now,
        }));
        const result = await real.store.ingest({ tenantId: TENANT, events, now: m.now });
        expect(result.kind).toBe("accepted");
        if (result.kind !== "accepted") return undefined;
        for (const [i, w] of ws.entries()) {
          const webhook = m.webhooks[w]!;
          const expected = webhook.exists && webhook.enabled ? 1 : 0;
          expect(result.events[i]?.deliveriesCount).toBe(expected);
          const ids = (await allRows(real.store, "deliveries")).filter(
            (row) => row.event_id === events[i]!.id,
          );
          expect(ids).toHaveLength(expected);
          for (const { id } of ids) {
            m.deliveries.push({
              id: id as string,
              webhook: w,
              status: "pending",
              attempts: 0,
              series: 0,
              dueAt: m.now,
              owner: null,
              createdAt: m.now,
              pastOwners: [],
            });
          }
        }
        return undefined;
      },
    ),
  );

const claim = fc
  .record({
    limit: fc.integer({ min: 1, max: 6 }),
    retryLimit: fc.integer({ min: 0, max: 6 }),
    leaseMs: fc.constantFrom(1_000, 40_000),
  })
  .map(({ limit, retryLimit, leaseMs }) =>
    command(
      `claim(limit ${limit}, retries ${retryLimit}, lease ${leaseMs})`,
      () => true,
      async (m, real) => {
        const owner = `owner-${++m.claims}`;
        const claimable = m.deliveries.filter((d) => modelClaimable(m, d));
        // A subscription's cap counts the live leases of earlier claims too (held in the database).
        const room = WEBHOOKS.map((w, i) => Math.max(0, w.maxInFlight - liveLeases(m, i)));
        const claimed = await real.store.claimDue({
          now: m.now,
          owner,
          leaseMs,
          limit,
          retryLimit,
        });
        const byId = new Map(m.deliveries.map((d) => [d.id, d]));
        const perWebhook = new Map<number, number>();
        let retries = 0;
        expect(new Set(claimed.map((c) => c.id)).size).toBe(claimed.length);
        for (const c of claimed) {
          const d = byId.get(c.id);
          expect(d).toBeDefined();
          if (!d) continue;
          // Never a delivery under another owner's live lease, never a final one.
          expect(modelClaimable(m, d)).toBe(true);
          expect(c.leaseOwner).toBe(owner);
          expect(c.status).toBe(d.status);
          expect(c.seriesAttempts).toBe(d.series);
          expect(c.webhook.id).toBe(m.webhooks[d.webhook]!.id);
          perWebhook.set(d.webhook, (perWebhook.get(d.webhook) ?? 0) + 1);
          if (d.status === "retrying") retries++;
        }
        for (const [w, n] of perWebhook) expect(n).toBeLessThanOrEqual(room[w]!);
        expect(retries).toBeLessThanOrEqual(retryLimit);
        expect(claimed.length).toBeLessThanOrEqual(limit);
        // Every subscription gives up to its cap: pending ones always, retries within the retry limit.
        const capped = (filter: (d: ModelDelivery) => boolean) =>
          WEBHOOKS.reduce(
            (sum, _w, i) =>
              sum + Math.min(room[i]!, claimable.filter((d) => d.webhook === i && filter(d)).length),
            0,
          );
        const most = Math.min(
          limit,
          capped(() => true),
        );
        if (retryLimit >= limit) expect(claimed.length).toBe(most);
        else {
          expect(claimed.length).toBeGreaterThanOrEqual(
            Math.min(
              limit,
              capped((d) => d.status === "pending"),
            ),
          );
          expect(claimed.length).toBeLessThanOrEqual(most);
        }
        // A disabled subscription's queued deliveries (re-queued after it was disabled) are failed by
        // the claim that meets it, if it gets that far: all of them, or none yet.
        const rows = new Map((await readRows(real)).map((row) => [row.id, row]));
        m.webhooks.forEach((w, i) => {
          if (!w.exists || w.enabled) return;
          const queued = m.deliveries.filter((d) => d.webhook === i && isQueued(d.status));
          const failed = queued.filter((d) => rows.get(d.id)?.status === "failed");
          expect([0, queued.length]).toContain(failed.length);
          if (failed.length > 0) disableInModel(m, i);
        });
        // The lease ends when the store says (a margin beyond the timeout is its choice), not sooner.
        const leasedUntil = new Map([...rows].map(([id, row]) => [id, row.next_attempt_at]));
        for (const c of claimed) {
          const d = byId.get(c.id)!;
          const until = leasedUntil.get(d.id) ?? null;
          expect(until).not.toBeNull();
          expect(until as number).toBeGreaterThanOrEqual(leaseFloor(m, d.webhook, leaseMs));
          d.owner = owner;
          d.dueAt = until;
          d.pastOwners.push(owner);
        }
        return undefined;
      },
    ),
  );

const settlementArb: fc.Arbitrary<Settlement | { action: "retry"; delay: number }> = fc.oneof(
  fc.constant({ action: "succeed" as const }),
  fc.record({ action: fc.constant("retry" as const), delay: fc.constantFrom(0, 50, 500, 20_000) }),
  fc.record({
    action: fc.constant("fail" as const),
    reason: fc.constantFrom("gone" as const, "blocked_address" as const, "disabled" as const),
  }),
  fc.constant({ action: "exhaust" as const }),
);

const settle = fc
  .record({
    index: fc.nat(),
    settlement: settlementArb,
    by: fc.constantFrom("owner", "owner", "owner", "stale", "stranger"),
  })
  .map(({ index, settlement: drawn, by }) =>
    command(
      `settle(#${index}, ${JSON.stringify(drawn)}, by ${by})`,
      (m) => m.deliveries.length > 0,
      async (m, real) => {
        // Mostly a delivery someone holds (a live or lapsed lease), else any.
        const held = m.deliveries.filter((x) => x.owner !== null);
        const d = pick(by === "owner" && held.length > 0 ? held : m.deliveries, index);
        const stale = d.pastOwners.filter((o) => o !== d.owner).at(-1);
        const owner =
          by === "owner" ? (d.owner ?? stale ?? "nobody") : by === "stale" ? (stale ?? "nobody") : "stranger";
        const settlement: Settlement =
          drawn.action === "retry" && "delay" in drawn
            ? { action: "retry", at: m.now + drawn.delay }
            : (drawn as Settlement);
        const ok = settlement.action === "succeed";
        const result: AttemptResult = {
          deliveryId: d.id,
          leaseOwner: owner,
          webhookId: m.webhooks[d.webhook]!.id,
          signature: "v1,test",
          settlement,
          attempt: {
            id: real.ids.next("atm"),
            startedAt: m.now,
            durationMs: 1,
            responseStatusCode: ok ? 200 : 500,
            responseHeaders: null,
            responseBody: null,
            error: ok ? null : "http_status",
          },
        };
        const outcome = await real.store.settle([result], m.now, HEALTH, () => real.ids.next("evt"));

        // Applies only for the owner of a live (or lapsed but not retaken) lease of a queued delivery.
        const applies = isQueued(d.status) && d.owner !== null && d.owner === owner;
        expect(outcome.applied).toEqual([applies]);
        if (applies) {
          d.attempts++;
          d.series++;
          d.owner = null;
          d.status = { succeed: "success", retry: "retrying", fail: "failed", exhaust: "exhausted" }[
            settlement.action
          ] as DeliveryStatus;
          d.dueAt = settlement.action === "retry" ? settlement.at : null;
        }
        // The subscription's health follows every attempt, applied or not.
        const w = m.webhooks[d.webhook]!;
        let disabled = false;
        if (w.exists) {
          if (ok) {
            w.failures = 0;
            w.healthSince = m.now;
          } else {
            w.failures++;
            const gone = settlement.action === "fail" && settlement.reason === "gone";
            const failing =
              w.failures >= HEALTH.disableAfterFailures && m.now - w.healthSince >= HEALTH.disableAfterMs;
            if (w.enabled && (gone || failing)) {
              disableInModel(m, d.webhook);
              disabled = true;
            }
          }
        }
        expect(outcome.disabled.map((x) => x.webhookId)).toEqual(disabled ? [w.id] : []);
        return undefined;
      },
    ),
  );

const advance = fc.constantFrom(1, 100, 1_000, 6_000, 16_000, 21_000, 46_000, 61_000).map((ms) =>
  command(
    `advance(${ms}ms)`,
    () => true,
    async (m, real) => {
      m.now += ms;
      real.clock.advance(ms);
      return undefined;
    },
  ),
);

const release = fc.record({ index: fc.nat(), stale: fc.boolean() }).map(({ index, stale }) =>
  command(
    `release(#${index}${stale ? ", stale owner" : ""})`,
    (m) => m.deliveries.length > 0,
    async (m, real) => {
      const held = m.deliveries.filter((x) => x.owner !== null);
      const d = pick(held.length > 0 ? held : m.deliveries, index);
      const owner = stale
        ? (d.pastOwners.filter((o) => o !== d.owner).at(-1) ?? "nobody")
        : (d.owner ?? "nobody");
      const released = await real.store.releaseLeases([{ deliveryId: d.id, leaseOwner: owner }], m.now);
      const applies = isQueued(d.status) && d.owner === owner;
      expect(released).toBe(applies ? 1 : 0);
      if (applies) {
        d.owner = null;
        d.dueAt = m.now;
      }
      return undefined;
    },
  ),
);

// Requeue and recover need an existing subscription, as their routes do (a 409 otherwise); a
// cancelled delivery (its subscription deleted) is refused by the store itself.
// Deliveries of a deleted subscription are all cancelled (the delete cancels the queued ones and
// the final ones stay); requeue refuses both in the store, whatever the route checked before.
const requeueable = (_m: Model, _d: ModelDelivery) => true;
const requeue = fc.nat().map((index) =>
  command(
    `requeue(#${index})`,
    (m) => m.deliveries.some((d) => requeueable(m, d)),
    async (m, real) => {
      const live = m.deliveries.filter((d) => requeueable(m, d));
      const d = pick(live, index);
      const result = await real.store.requeueDelivery(d.id, undefined, m.now);
      const w = m.webhooks[d.webhook]!;
      if (d.status === "cancelled") expect(result).toBe("cancelled");
      else if (!w.exists) expect(result).toBe("webhook_deleted");
      else if (!w.enabled) expect(result).toBe("webhook_disabled");
      else if (isQueued(d.status)) expect(result).toBe("queued");
      else {
        expect(result).toMatchObject({ id: d.id, status: "pending", attempts: d.attempts });
        Object.assign(d, { status: "pending", series: 0, dueAt: m.now, owner: null });
        return new Set([d.id]);
      }
      return undefined;
    },
  ),
);

const recover = fc
  .record({ w: fc.integer({ min: 0, max: WEBHOOKS.length - 1 }), from: fc.nat(), to: fc.nat() })
  .map(({ w, from, to }) =>
    command(
      `recover(w${w}, ${from}, ${to})`,
      (m) => m.webhooks[w]!.exists,
      async (m, real) => {
        // Bounds drawn from the creation times that exist, so ranges cut between deliveries.
        const times = [...new Set([T0, ...m.deliveries.map((d) => d.createdAt), m.now + 1])].sort(
          (a, b) => a - b,
        );
        const since = pick(times, from);
        const until = pick(times, from + (to % times.length));
        const n = await real.store.recoverDeliveries(m.webhooks[w]!.id, since, until, m.now);
        if (!m.webhooks[w]!.enabled) {
          expect(n).toBe("webhook_disabled");
          return undefined;
        }
        const revived = m.deliveries.filter(
          (d) =>
            d.webhook === w &&
            (d.status === "failed" || d.status === "exhausted") &&
            d.createdAt >= since &&
            d.createdAt < until,
        );
        expect(n).toBe(revived.length);
        for (const d of revived)
          Object.assign(d, { status: "pending", series: 0, dueAt: m.now, owner: null });
        return new Set(revived.map((d) => d.id));
      },
    ),
  );

const remove = fc.integer({ min: 0, max: WEBHOOKS.length - 1 }).map((w) =>
  command(
    `delete(w${w})`,
    (m) => m.webhooks[w]!.exists,
    async (m, real) => {
      expect(await real.store.deleteWebhook(m.webhooks[w]!.id, undefined, m.now)).toBe(true);
      m.webhooks[w]!.exists = false;
      const queued = m.deliveries.filter((d) => d.webhook === w && isQueued(d.status)).length;
      expect(drainFinals(real.finals)).toEqual(queued > 0 ? [{ status: "cancelled", count: queued }] : []);
      for (const d of m.deliveries) {
        if (d.webhook === w && isQueued(d.status))
          Object.assign(d, { status: "cancelled", dueAt: null, owner: null });
      }
      return undefined;
    },
  ),
);

const disable = fc.integer({ min: 0, max: WEBHOOKS.length - 1 }).map((w) =>
  command(
    `disable(w${w})`,
    (m) => m.webhooks[w]!.exists && m.webhooks[w]!.enabled,
    async (m, real) => {
      const updated = await real.store.updateWebhook(
        m.webhooks[w]!.id,
        undefined,
        { enabled: false, disabledReason: "manual" },
        m.now,
      );
      expect(updated?.enabled).toBe(false);
      const queued = m.deliveries.filter((d) => d.webhook === w && isQueued(d.status)).length;
      expect(drainFinals(real.finals)).toEqual(queued > 0 ? [{ status: "failed", count: queued }] : []);
      disableInModel(m, w);
      return undefined;
    },
  ),
);

const enable = fc.integer({ min: 0, max: WEBHOOKS.length - 1 }).map((w) =>
  command(
    `enable(w${w})`,
    (m) => m.webhooks[w]!.exists && !m.webhooks[w]!.enabled,
    async (m, real) => {
      const updated = await real.store.updateWebhook(
        m.webhooks[w]!.id,
        undefined,
        { enabled: true, disabledReason: null, resetHealthAt: m.now },
        m.now,
      );
      expect(updated?.enabled).toBe(true);
      Object.assign(m.webhooks[w]!, { enabled: true, failures: 0, healthSince: m.now });
      return undefined;
    },
  ),
);

async function setup(driver: StoreDriver, opened: Store[]): Promise<{ model: Model; real: Real }> {
  const clock = createManualClock(T0);
  const ids = createIdGenerator(clock, cryptoRandom);
  const finals: Real["finals"] = [];
  // As the daemon builds it, metrics hook included.
  const store = await driver.create({
    ids,
    clock,
    onFinal: (status, _mode, count) => finals.push({ status, count }),
  });
  opened.push(store);
  const webhooks: ModelWebhook[] = [];
  for (const [i, spec] of WEBHOOKS.entries()) {
    const webhook = await store.insertWebhook({
      id: ids.next("wh"),
      tenantId: TENANT,
      name: `w${i}`,
      description: null,
      url: `https://example.com/w${i}`,
      events: [`type.w${i}`],
      accountIds: null,
      enabled: true,
      disabledReason: null,
      timeoutSeconds: spec.timeoutSeconds,
      headers: {},
      metadata: {},
      maxInFlight: spec.maxInFlight,
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      createdAt: T0,
    });
    webhooks.push({ id: webhook.id, exists: true, enabled: true, failures: 0, healthSince: T0 });
  }
  return { model: { now: T0, webhooks, deliveries: [], claims: 0 }, real: { store, clock, ids, finals } };
}

// Weighted towards the busy path: ingest, claim, settle, time passing.
const allCommands = [
  ingest,
  ingest,
  claim,
  claim,
  claim,
  settle,
  settle,
  settle,
  settle,
  advance,
  advance,
  release,
  requeue,
  recover,
  remove,
  disable,
  enable,
];

for (const driver of STORE_DRIVERS) {
  describe(driver.name, () => {
    const opened: Store[] = [];
    afterAll(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    test(
      "the store follows the delivery state machine under random command sequences",
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.commands(allCommands, { maxCommands: 80, size: "max" }), async (commands) => {
            const { model, real } = await setup(driver, opened);
            try {
              await fc.asyncModelRun(() => ({ model, real }), commands);
            } finally {
              opened.splice(opened.indexOf(real.store), 1);
              await real.store.close();
            }
          }),
          { numRuns: 100 },
        );
        // Every run is a fresh store: on PostgreSQL a database created and migrated per run.
      },
      driver.name === "sqlite" ? 60_000 : 600_000,
    );
  });
}
