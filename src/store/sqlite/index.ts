// The SQLite implementation of Store: bun:sqlite in WAL mode, one connection, statements in
// sibling modules. bun:sqlite is synchronous; the async surface is the Store contract.
import type { Database } from "bun:sqlite";
import type { NewWebhook, Store } from "../store.ts";
import { guard } from "./errors.ts";
import { type OpenOptions, openDatabase } from "./open.ts";
import * as sql from "./webhooks.ts";

export function createSqliteStore(options: OpenOptions): Store & { readonly db: Database } {
  const db = openDatabase(options);
  const tx = <T>(fn: () => T): T => guard(() => db.transaction(fn).immediate());

  return {
    driver: "sqlite",
    db,

    async checkWritable(now) {
      guard(() =>
        db
          .query(
            "INSERT INTO settings (key, value) VALUES ('heartbeat', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          )
          .run(String(now)),
      );
    },

    async close() {
      guard(() => {
        db.run("PRAGMA optimize");
        db.run("PRAGMA wal_checkpoint(TRUNCATE)");
      });
      db.close();
    },

    async getSetting(key) {
      const row = guard(() =>
        db.query<{ value: string }, [string]>("SELECT value FROM settings WHERE key = ?").get(key),
      );
      return row?.value ?? null;
    },

    async insertSettingIfAbsent(key, value) {
      return guard(
        () =>
          db.query("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)").run(key, value).changes > 0,
      );
    },

    async insertWebhook(webhook: NewWebhook) {
      return tx(() => {
        sql.insertWebhook(db, webhook);
        return sql.selectWebhook(db, webhook.id)!;
      });
    },

    async findWebhook(id, tenantId) {
      return guard(() => sql.selectWebhook(db, id, tenantId));
    },

    async listWebhooks(filter, page) {
      return guard(() => sql.selectWebhookPage(db, filter, page));
    },

    async updateWebhook(id, tenantId, changes, now) {
      return tx(() => (sql.updateWebhook(db, id, tenantId, changes, now) ? sql.selectWebhook(db, id) : null));
    },

    async deleteWebhook(id, tenantId) {
      return tx(() => sql.deleteWebhook(db, id, tenantId));
    },

    async rotateWebhookSecret(id, tenantId, secret, now, graceUntil) {
      return tx(() => {
        const current = sql.selectWebhook(db, id, tenantId);
        if (!current) return null;
        sql.deleteExpiredSecrets(db, id, now);
        if (graceUntil > now) sql.insertPreviousSecret(db, id, current.secret, graceUntil);
        sql.replaceSecret(db, id, secret, now);
        return sql.selectWebhook(db, id);
      });
    },
  };
}
