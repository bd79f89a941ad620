/**
 * Migration 4: the lease commit of migration 2, same rules, without a subtransaction per change and
 * with one NOTIFY per batch. Kept apart from migrations.ts only for length; like every migration it is
 * never edited once released.
 *
 * Why: migration 2 caught unique_violation in a BEGIN/EXCEPTION block per change, i.e. one
 * subtransaction (with its own XID) per change; past 64 in one transaction PostgreSQL's per-backend
 * subxid cache overflows and every snapshot in the cluster has to look in pg_subtrans. And it sent one
 * NOTIFY per change, each one queued, signalled and shipped to every listener.
 *
 * Instead, the batch first takes a transaction-scoped advisory lock on every (network, address) and
 * (network, MAC) it touches, in one global order (two batches never deadlock on them). Every writer of
 * the lease table goes through this function, so once those locks are held, the "another MAC holds
 * this address live" check cannot be overtaken by a concurrent insert: the unique_violation the old
 * block caught cannot happen, and the rules decide exactly as before. A unique (network, address) or
 * (network, MAC) violation would now abort the batch (the caller refuses its grants) rather than
 * store anything twice: the constraints stay the last word.
 */
export const LEASE_COMMIT_V4 = `
-- One change, rules as rolecast_lease_one (migration 2); the caller holds the advisory locks.
-- true: stored; false: refused; NULL: an offer of what this MAC already holds bound (nothing stored).
CREATE FUNCTION rolecast_lease_apply(x jsonb, origin text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_net   text := x->>'network';
  v_mac   text := x->>'mac';
  v_ip    text := x->>'ip';
  v_state text := x->>'state';
  v_exp   timestamptz := (x->>'expiresAt')::timestamptz;
  v_res   boolean := coalesce((x->>'reserved')::boolean, false);
  n       integer;
BEGIN
  IF v_state = 'released' THEN
    UPDATE leases SET state = 'released', expires_at = v_exp, server = origin, updated_at = now()
      WHERE network = v_net AND mac = v_mac AND ip = v_ip AND server = origin;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
  END IF;
  PERFORM 1 FROM leases WHERE network = v_net AND ip = v_ip AND mac <> v_mac
    AND state <> 'released' AND expires_at > now();
  IF FOUND THEN RETURN false; END IF;
  DELETE FROM leases WHERE network = v_net AND ip = v_ip AND mac <> v_mac
    AND (state = 'released' OR expires_at <= now());
  INSERT INTO leases AS l (network, mac, ip, state, expires_at, host, server)
    VALUES (v_net, v_mac, v_ip, v_state, v_exp, x->>'host', origin)
    ON CONFLICT (network, mac) DO UPDATE
      SET ip = EXCLUDED.ip, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, host = EXCLUDED.host,
          server = EXCLUDED.server, updated_at = now()
      WHERE NOT (v_state = 'offered' AND l.state = 'bound' AND l.ip = EXCLUDED.ip AND l.expires_at > now())
        AND (v_res OR v_state NOT IN ('offered', 'bound') OR l.ip = EXCLUDED.ip OR l.server = EXCLUDED.server
             OR l.state NOT IN ('offered', 'bound') OR l.expires_at <= now());
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN RETURN true; END IF;
  IF v_state = 'offered' THEN
    PERFORM 1 FROM leases WHERE network = v_net AND mac = v_mac AND ip = v_ip AND state = 'bound' AND expires_at > now();
    IF FOUND THEN RETURN NULL; END IF;
  END IF;
  RETURN false;
END $$;

-- A batch in one transaction. The NOTIFY lists the stored changes as [network, mac, ip, state,
-- expiresAt, host] rows, several per notification (a payload stays under PostgreSQL's 8000 bytes).
CREATE OR REPLACE FUNCTION rolecast_lease_commit(batch jsonb, origin text) RETURNS boolean[] LANGUAGE plpgsql AS $$
DECLARE
  k    bigint;
  x    jsonb;
  r    boolean;
  res  boolean[] := '{}';
  head text := '{"s" : ' || to_json(origin)::text || ', "l" : [';
  note text := '';
  item text;
BEGIN
  FOR k IN SELECT DISTINCT v.key FROM jsonb_array_elements(batch) AS e(value),
      LATERAL (VALUES (hashtextextended('a|' || (e.value->>'network') || '|' || (e.value->>'ip'), 0)),
                      (hashtextextended('m|' || (e.value->>'network') || '|' || (e.value->>'mac'), 0))) AS v(key)
      ORDER BY v.key LOOP
    PERFORM pg_advisory_xact_lock(k);
  END LOOP;
  FOR x IN SELECT e.value FROM jsonb_array_elements(batch) WITH ORDINALITY AS e(value, n) ORDER BY e.n LOOP
    r := rolecast_lease_apply(x, origin);
    res := array_append(res, r);
    IF r THEN
      item := json_build_array(x->>'network', x->>'mac', x->>'ip', x->>'state', x->>'expiresAt', x->>'host')::text;
      IF note <> '' AND octet_length(head) + octet_length(note) + octet_length(item) > 7900 THEN
        PERFORM pg_notify('rolecast_leases', head || note || ']}');
        note := '';
      END IF;
      note := CASE WHEN note = '' THEN item ELSE note || ',' || item END;
    END IF;
  END LOOP;
  IF note <> '' THEN PERFORM pg_notify('rolecast_leases', head || note || ']}'); END IF;
  RETURN res;
END $$;

-- Migration 2's per-change function (one subtransaction and one NOTIFY each) is no longer called.
DROP FUNCTION rolecast_lease_one(jsonb, text);
`;
