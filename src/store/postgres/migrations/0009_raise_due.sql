-- hookd schema for PostgreSQL, version 9: a claim's raise of drained subscriptions' hints in one call.
--
-- A raise (dispatch.ts, raiseDue) tries each subscription's due lock exclusively, then recomputes
-- the hints of those it took in a later statement, and holds the locks until it commits
-- (deliveries.ts says why the two statements must be apart). Sent from hookd as BEGIN, the two
-- statements and COMMIT, the transaction held those locks across four round trips and whatever
-- hookd's event loop did between them: every ingest into those subscriptions, which takes their due
-- locks shared, waited for it (measured at 1000 ev/s to one subscription: 137 ingests of 1541 in
-- 5 s waited 2.6 ms on average, up to 10 ms). hookd_raise_due() runs both statements inside the
-- server as one autocommit call: a VOLATILE PL/pgSQL function takes a new snapshot for each
-- statement, so the recomputation sees every delivery committed before the locks were taken, as
-- the separate statements did. It commits without waiting for its WAL flush (a raise lost with the
-- server's last moments leaves a hint low, which is safe). It answers the subscriptions raised.
--
-- Forward only, and never replaced in place (see version 7).
CREATE FUNCTION hookd_raise_due(ids text[], db_now bigint) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  taken text[];
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT array_agg(u.id) INTO taken FROM unnest(ids) AS u(id)
    WHERE pg_try_advisory_xact_lock(hashtext('hookd.due.' || u.id), hashtext(current_setting('search_path')));
  IF taken IS NULL THEN
    RETURN;
  END IF;
  -- A subscription whose row another transaction holds is skipped, its hint left as low as it is:
  -- a raise never waits for a row lock (deliveries.ts, recomputeDue).
  RETURN QUERY
    WITH held AS (SELECT w.id FROM webhooks w WHERE w.id = ANY(taken) FOR UPDATE SKIP LOCKED)
    UPDATE webhooks w SET next_due_at = least(
      (SELECT min(d.next_attempt_at) FROM deliveries d
        WHERE d.webhook_id = w.id AND d.status IN ('pending', 'retrying') AND d.lease_owner IS NULL),
      (SELECT min(d.leased_until) FROM deliveries d
        WHERE d.webhook_id = w.id AND d.status IN ('pending', 'retrying') AND d.lease_owner IS NOT NULL
          AND d.next_attempt_at <= db_now))
    FROM held WHERE w.id = held.id
    RETURNING w.id;
END $$;
