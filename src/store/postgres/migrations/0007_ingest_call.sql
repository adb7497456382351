-- hookd schema for PostgreSQL, version 7: grouped ingests in one call.
--
-- hookd_ingest() runs the statements of a grouped ingest (index.ts, ingestBatch) inside the
-- server, so a group costs one round trip and commits on its own (the call is one statement in
-- autocommit) instead of BEGIN, the statements and COMMIT as three round trips, with the
-- transaction idle between them while hookd's event loop got round to the next one. The order and
-- the meaning of the statements are those of the transaction it replaces: a PL/pgSQL function that
-- is VOLATILE (the default) takes a new snapshot for each statement it runs, so the version read
-- after the locks sees every subscription change committed before they were held.
--
-- 1. the fan-out lock, shared, then the targets' due locks, shared, in the order given (sorted);
-- 2. the fan-out version: when it is not the one the caller matched against, nothing is written
--    and the call answers the version (the caller drops its copy and runs the group again);
-- 3. the events, their deliveries, the hints lowered where they are later (deliveries.ts), and the
--    statistics rows of the group (in the key order the caller gives, last, as every writer does).
-- It answers the version it saw; the group was written when that is `expected`.
--
-- Forward only, like every migration: a later change to this function is a CREATE OR REPLACE in a
-- migration of its own (instances of the previous version keep calling it during a rolling upgrade,
-- so its parameters only ever grow with defaults).
CREATE FUNCTION hookd_ingest(
  expected bigint,
  targets text[],
  ev_id text[], ev_tenant text[], ev_type text[], ev_account text[], ev_payload text[],
  ev_deliveries int[], ev_created bigint[], ev_mode text[],
  dl_id text[], dl_tenant text[], dl_event text[], dl_webhook text[], dl_type text[],
  dl_due bigint[], dl_created bigint[], dl_mode text[],
  due_id text[], due_at bigint[],
  st_span bigint[], st_webhook text[], st_start bigint[], st_tenant text[], st_events bigint[],
  st_mode text[], st_shard int
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  seen bigint;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(hashtext('hookd.fanout'), hashtext(current_setting('search_path')));
  PERFORM count(pg_advisory_xact_lock_shared(hashtext('hookd.due.' || u.id), hashtext(current_setting('search_path'))))
    FROM unnest(targets) WITH ORDINALITY AS u(id, n);
  SELECT version INTO seen FROM fanout_version WHERE id = 1;
  IF seen IS DISTINCT FROM expected THEN
    RETURN seen;
  END IF;
  INSERT INTO events (id, tenant_id, type, account_id, payload, deliveries_count, created_at, mode)
    SELECT * FROM unnest(ev_id, ev_tenant, ev_type, ev_account, ev_payload, ev_deliveries, ev_created, ev_mode);
  INSERT INTO deliveries (id, tenant_id, mode, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at)
    SELECT u.id, u.tenant_id, u.mode, u.event_id, u.webhook_id, u.event_type, 'pending', u.due, u.created, u.created
    FROM unnest(dl_id, dl_tenant, dl_event, dl_webhook, dl_type, dl_due, dl_created, dl_mode)
      AS u(id, tenant_id, event_id, webhook_id, event_type, due, created, mode);
  UPDATE webhooks w SET next_due_at = u.at
    FROM unnest(due_id, due_at) AS u(id, at)
    WHERE w.id = u.id AND (w.next_due_at IS NULL OR w.next_due_at > u.at);
  INSERT INTO webhook_stats (span, webhook_id, start, tenant_id, shard, mode, events)
    SELECT u.span, u.webhook_id, u.start, u.tenant_id, st_shard, u.mode, u.events
    FROM unnest(st_span, st_webhook, st_start, st_tenant, st_events, st_mode) WITH ORDINALITY
      AS u(span, webhook_id, start, tenant_id, events, mode, n)
    ORDER BY u.n
    ON CONFLICT (span, webhook_id, start, tenant_id, mode, shard)
      DO UPDATE SET events = webhook_stats.events + excluded.events;
  RETURN seen;
END
$$;
