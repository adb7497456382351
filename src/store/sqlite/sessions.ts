// Portal and console sessions on SQLite: stored by the hash of their token, looked up per request.
import type { Database, SQLQueryBindings } from "bun:sqlite";
import type { Capability, Mode, SessionKind } from "../../domain/portal.ts";
import type { NewPortalSession, Page, PageQuery, PortalSession, PortalSessionFilter } from "../store.ts";
import { keysetPage } from "./keyset.ts";

interface SessionRow {
  id: string;
  kind: string;
  tenant_id: string | null;
  mode: string;
  capabilities: string;
  created_at: number;
  expires_at: number;
}

const COLUMNS = "s.id, s.kind, s.tenant_id, s.mode, s.capabilities, s.created_at, s.expires_at";

export const toSession = (row: SessionRow): PortalSession => ({
  id: row.id,
  kind: row.kind as SessionKind,
  tenantId: row.tenant_id,
  mode: row.mode as Mode,
  capabilities: JSON.parse(row.capabilities) as Capability[],
  createdAt: Number(row.created_at),
  expiresAt: Number(row.expires_at),
});

export function insertSession(db: Database, s: NewPortalSession): void {
  db.query(
    `INSERT INTO portal_sessions (id, token_hash, kind, tenant_id, mode, capabilities, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    s.id,
    s.tokenHash,
    s.kind,
    s.tenantId,
    s.mode,
    JSON.stringify(s.capabilities),
    s.createdAt,
    s.expiresAt,
  );
}

export function selectSessionByToken(db: Database, tokenHash: string, now: number): PortalSession | null {
  const row = db
    .query<SessionRow, [string, number]>(
      `SELECT ${COLUMNS} FROM portal_sessions s WHERE s.token_hash = ? AND s.expires_at > ?`,
    )
    .get(tokenHash, now);
  return row ? toSession(row) : null;
}

export function selectSession(
  db: Database,
  id: string,
  tenantId: string | undefined,
  now: number,
): PortalSession | null {
  const row = db
    .query<SessionRow, [string, number, string | null]>(
      `SELECT ${COLUMNS} FROM portal_sessions s WHERE s.id = ? AND s.expires_at > ?
         AND (?3 IS NULL OR s.tenant_id = ?3)`,
    )
    .get(id, now, tenantId ?? null);
  return row ? toSession(row) : null;
}

export function selectSessionPage(
  db: Database,
  filter: PortalSessionFilter,
  page: PageQuery<"-created_at">,
): Page<PortalSession> {
  const where = ["s.expires_at > ?"];
  const params: SQLQueryBindings[] = [filter.now];
  if (filter.tenantId !== undefined) {
    where.push("s.tenant_id = ?");
    params.push(filter.tenantId);
  }
  return keysetPage(
    db,
    {
      select: `SELECT ${COLUMNS} FROM portal_sessions s`,
      where,
      params,
      column: "s.created_at",
      idColumn: "s.id",
      descending: true,
      map: toSession,
    },
    page,
  );
}

export function deleteSession(db: Database, id: string, tenantId: string | undefined, now: number): boolean {
  return (
    db
      .query("DELETE FROM portal_sessions WHERE id = ? AND expires_at > ? AND (?3 IS NULL OR tenant_id = ?3)")
      .run(id, now, tenantId ?? null).changes > 0
  );
}

export function deleteSessions(db: Database, tenantId: string | undefined, now: number): number {
  return db
    .query("DELETE FROM portal_sessions WHERE expires_at > ? AND (?2 IS NULL OR tenant_id = ?2)")
    .run(now, tenantId ?? null).changes;
}

/** Sessions that ended before `before` (they are refused already; this only frees the rows). */
export function deleteEndedSessions(db: Database, before: number, limit: number): number {
  return db
    .query(
      "DELETE FROM portal_sessions WHERE id IN (SELECT id FROM portal_sessions WHERE expires_at < ? LIMIT ?)",
    )
    .run(before, limit).changes;
}
