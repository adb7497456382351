-- hookd schema for PostgreSQL, version 7: grouped ingests and usual settlements in one call each.
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
-- Forward only, like every migration, and never replaced in place: instances of this version keep
-- calling these functions while a newer one migrates during a rolling upgrade, so a later version
-- that needs another shape adds a function of another name.
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

-- hookd_settle() is a settlement batch in one call (dispatch.ts, settleInOneCall), for the usual
-- batch: one in which every subscription's last attempt succeeded, so no subscription can be
-- disabled by it (domain/retry.ts, decideHealth) and no fan-out lock is needed. Any other batch
-- takes the transaction of several statements. The statements are those of that transaction:
--
-- 1. the due locks, shared, of the subscriptions that get a retry (their hints are lowered below);
-- 2. the attempts; if one of them is recorded already (an earlier try of this batch committed and
--    its answer was lost), the call fails with SQLSTATE HK001 and writes nothing, and the caller
--    settles the batch the other way, which knows what to do with such a result;
-- 3. the deliveries settled by their lease owners, and in the same statement every subscription's
--    places given back, health counters (relatively) and hint;
-- 4. the statistics rows (last, as every writer does).
-- It answers the ids of the deliveries it settled.
CREATE FUNCTION hookd_settle(
  now_ms bigint, db_now bigint, lock_due text[],
  at_id text[], at_delivery text[], at_started bigint[], at_duration int[], at_code int[],
  at_headers text[], at_body text[], at_error text[],
  dl_owner text[], dl_status text[], dl_retry bigint[], dl_signature text[],
  wh_id text[], wh_reset bigint[], wh_failures int[],
  stats text, st_shard int
) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  recorded int;
BEGIN
  PERFORM count(pg_advisory_xact_lock_shared(hashtext('hookd.due.' || u.id), hashtext(current_setting('search_path'))))
    FROM unnest(lock_due) WITH ORDINALITY AS u(id, n);
  INSERT INTO attempts (id, delivery_id, started_at, duration_ms, response_status_code, response_headers, response_body, error)
    SELECT * FROM unnest(at_id, at_delivery, at_started, at_duration, at_code, at_headers, at_body, at_error)
    ON CONFLICT (id) DO NOTHING;
  GET DIAGNOSTICS recorded = ROW_COUNT;
  IF recorded <> coalesce(cardinality(at_id), 0) THEN
    RAISE EXCEPTION 'an attempt of this settlement is recorded already' USING ERRCODE = 'HK001';
  END IF;
  RETURN QUERY
    WITH settled AS (
      UPDATE deliveries d SET status = u.status, next_attempt_at = u.retry_at, lease_owner = NULL, leased_until = NULL,
        attempts = d.attempts + 1, series_attempts = d.series_attempts + 1, response_status_code = u.code,
        last_attempt_at = u.started, signature = coalesce(u.signature, d.signature), updated_at = now_ms
      FROM unnest(at_delivery, dl_owner, dl_status, dl_retry, at_code, at_started, dl_signature)
        AS u(id, owner, status, retry_at, code, started, signature)
      WHERE d.id = u.id AND d.lease_owner = u.owner AND d.status IN ('pending', 'retrying')
      RETURNING d.id, d.webhook_id, u.retry_at),
    per AS (
      SELECT s.webhook_id, count(*)::int AS freed, min(s.retry_at) AS due, bool_or(s.retry_at IS NULL) AS ended
      FROM settled s GROUP BY s.webhook_id),
    counted AS (
      UPDATE webhooks w SET in_flight = greatest(0, w.in_flight - coalesce(p.freed, 0)),
        consecutive_failures = CASE WHEN h.reset_at IS NULL THEN w.consecutive_failures + h.failures
          ELSE h.failures END,
        health_since = coalesce(h.reset_at, w.health_since),
        next_due_at = CASE WHEN p.due IS NOT NULL AND (w.next_due_at IS NULL OR w.next_due_at > p.due)
            THEN p.due
          -- A FIFO head ended: the next one may go now (its hint was the lease's end).
          WHEN coalesce(p.ended, false) AND w.ordering = 'fifo' AND (w.next_due_at IS NULL OR w.next_due_at > db_now)
            THEN db_now
          ELSE w.next_due_at END
      FROM unnest(wh_id, wh_reset, wh_failures) AS h(id, reset_at, failures)
        LEFT JOIN per p ON p.webhook_id = h.id
      WHERE w.id = h.id
      RETURNING w.id)
    SELECT s.id FROM settled s;
  INSERT INTO webhook_stats (span, webhook_id, start, tenant_id, shard, mode, attempts, succeeded, failed, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15, d16, d17, d18, d19, d20, d21, d22, d23, d24, d25, d26, d27)
    SELECT (t.j ->> 0)::bigint, t.j ->> 1, (t.j ->> 2)::bigint, w.tenant_id, st_shard, w.mode,
      (t.j ->> 3)::bigint,
      (t.j ->> 4)::bigint,
      (t.j ->> 5)::bigint,
      (t.j ->> 6)::bigint,
      (t.j ->> 7)::bigint,
      (t.j ->> 8)::bigint,
      (t.j ->> 9)::bigint,
      (t.j ->> 10)::bigint,
      (t.j ->> 11)::bigint,
      (t.j ->> 12)::bigint,
      (t.j ->> 13)::bigint,
      (t.j ->> 14)::bigint,
      (t.j ->> 15)::bigint,
      (t.j ->> 16)::bigint,
      (t.j ->> 17)::bigint,
      (t.j ->> 18)::bigint,
      (t.j ->> 19)::bigint,
      (t.j ->> 20)::bigint,
      (t.j ->> 21)::bigint,
      (t.j ->> 22)::bigint,
      (t.j ->> 23)::bigint,
      (t.j ->> 24)::bigint,
      (t.j ->> 25)::bigint,
      (t.j ->> 26)::bigint,
      (t.j ->> 27)::bigint,
      (t.j ->> 28)::bigint,
      (t.j ->> 29)::bigint,
      (t.j ->> 30)::bigint,
      (t.j ->> 31)::bigint,
      (t.j ->> 32)::bigint,
      (t.j ->> 33)::bigint
    FROM jsonb_array_elements(stats::jsonb) WITH ORDINALITY AS t(j, n) JOIN webhooks w ON w.id = t.j ->> 1
    ORDER BY t.n
    ON CONFLICT (span, webhook_id, start, tenant_id, mode, shard) DO UPDATE SET
      attempts = webhook_stats.attempts + excluded.attempts,
      succeeded = webhook_stats.succeeded + excluded.succeeded,
      failed = webhook_stats.failed + excluded.failed,
      d0 = webhook_stats.d0 + excluded.d0,
      d1 = webhook_stats.d1 + excluded.d1,
      d2 = webhook_stats.d2 + excluded.d2,
      d3 = webhook_stats.d3 + excluded.d3,
      d4 = webhook_stats.d4 + excluded.d4,
      d5 = webhook_stats.d5 + excluded.d5,
      d6 = webhook_stats.d6 + excluded.d6,
      d7 = webhook_stats.d7 + excluded.d7,
      d8 = webhook_stats.d8 + excluded.d8,
      d9 = webhook_stats.d9 + excluded.d9,
      d10 = webhook_stats.d10 + excluded.d10,
      d11 = webhook_stats.d11 + excluded.d11,
      d12 = webhook_stats.d12 + excluded.d12,
      d13 = webhook_stats.d13 + excluded.d13,
      d14 = webhook_stats.d14 + excluded.d14,
      d15 = webhook_stats.d15 + excluded.d15,
      d16 = webhook_stats.d16 + excluded.d16,
      d17 = webhook_stats.d17 + excluded.d17,
      d18 = webhook_stats.d18 + excluded.d18,
      d19 = webhook_stats.d19 + excluded.d19,
      d20 = webhook_stats.d20 + excluded.d20,
      d21 = webhook_stats.d21 + excluded.d21,
      d22 = webhook_stats.d22 + excluded.d22,
      d23 = webhook_stats.d23 + excluded.d23,
      d24 = webhook_stats.d24 + excluded.d24,
      d25 = webhook_stats.d25 + excluded.d25,
      d26 = webhook_stats.d26 + excluded.d26,
      d27 = webhook_stats.d27 + excluded.d27;
END
$$;
