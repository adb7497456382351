// Portal and console sessions on PostgreSQL: stored by the hash of their token and looked up per
// request by that unique key, so a revocation through one instance holds on every other at once.
import type { Capability, Mode, SessionKind } from "../../domain/portal.ts";
import type { NewPortalSession, Page, PageQuery, PortalSession, PortalSessionFilter } from "../store.ts";
import type { Query } from "./client.ts";
import { keysetPage, num } from "./keyset.ts";

interface SessionRow {
  id: string;
  kind: string;
  tenant_id: string | null;
  mode: string;
  capabilities: string;
  created_at: string | number;
  expires_at: string | number;
}

const COLUMNS = "s.id, s.kind, s.tenant_id, s.mode, s.capabilities, s.created_at, s.expires_at";

const toSession = (row: SessionRow): PortalSession => ({
  id: row.id,
  kind: row.kind as SessionKind,
  tenantId: row.tenant_id,
  mode: row.mode as Mode,
  capabilities: JSON.parse(row.capabilities) as Capability[],
  createdAt: num(row.created_at),
  expiresAt: num(row.expires_at),
});

export async function insertSession(q: Query, s: NewPortalSession): Promise<void> {
  await q(
    `INSERT INTO portal_sessions (id, token_hash, kind, tenant_id, mode, capabilities, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [s.id, s.tokenHash, s.kind, s.tenantId, s.mode, JSON.stringify(s.capabilities), s.createdAt, s.expiresAt],
  );
}

export async function selectSessionByToken(
  q: Query,
  tokenHash: string,
  now: number,
): Promise<PortalSession | null> {
  const [row] = await q<SessionRow>(
    `SELECT ${COLUMNS} FROM portal_sessions s WHERE s.token_hash = $1 AND s.expires_at > $2`,
    [tokenHash, now],
  );
  return row ? toSession(row) : null;
}

export async function selectSession(
  q: Query,
  id: string,
  tenantId: string | undefined,
  now: number,
): Promise<PortalSession | null> {
  const [row] = await q<SessionRow>(
    `SELECT ${COLUMNS} FROM portal_sessions s WHERE s.id = $1 AND s.expires_at > $2
       AND ($3::text IS NULL OR s.tenant_id = $3)`,
    [id, now, tenantId ?? null],
  );
  return row ? toSession(row) : null;
}

export function selectSessionPage(
  q: Query,
  filter: PortalSessionFilter,
  page: PageQuery<"-created_at">,
): Promise<Page<PortalSession>> {
  const where = ["s.expires_at > ?"];
  const params: unknown[] = [filter.now];
  if (filter.tenantId !== undefined) {
    where.push("s.tenant_id = ?");
    params.push(filter.tenantId);
  }
  return keysetPage(
    q,
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

export async function deleteSession(
  q: Query,
  id: string,
  tenantId: string | undefined,
  now: number,
): Promise<boolean> {
  const rows = await q(
    `DELETE FROM portal_sessions WHERE id = $1 AND expires_at > $2 AND ($3::text IS NULL OR tenant_id = $3)
     RETURNING 1`,
    [id, now, tenantId ?? null],
  );
  return rows.length > 0;
}

export async function deleteSessions(q: Query, tenantId: string | undefined, now: number): Promise<number> {
  const [row] = await q<{ n: number }>(
    `WITH gone AS (DELETE FROM portal_sessions WHERE expires_at > $1 AND ($2::text IS NULL OR tenant_id = $2)
       RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [now, tenantId ?? null],
  );
  return row?.n ?? 0;
}

export async function deleteEndedSessions(q: Query, before: number, limit: number): Promise<number> {
  const [row] = await q<{ n: number }>(
    `WITH gone AS (DELETE FROM portal_sessions WHERE id IN (
       SELECT id FROM portal_sessions WHERE expires_at < $1 LIMIT $2) RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [before, limit],
  );
  return row?.n ?? 0;
}
