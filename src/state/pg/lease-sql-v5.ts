/**
 * Migration 5: a lease batch whose changes cannot interact is decided by one set-based statement
 * instead of one plpgsql call (and four SQL statements) per change. Released with migration 5; never
 * edited once released: add the next migration.
 *
 * Why: measured with pg_stat_statements in the bench's cluster (`BENCH_DHCP_PGSTAT=1 npm run
 * bench:dhcp`), migration 4 spent ~100 µs of PostgreSQL time per change, most of it in the executor
 * start-up and plpgsql overhead of the per-change statements, not in the rows they touch.
 *
 * When the fast path applies (checked inside the batch's advisory locks, which are taken exactly as in
 * migration 4, in one global order): every change is an offer or a bound lease; no two changes of the
 * batch share a (network, MAC) or a (network, address); and no row of the table holds one of the
 * batch's addresses for another MAC. Then, per change, migration 4's "another MAC holds this address
 * live" check finds nothing and its clean-up DELETE deletes nothing, and no change can touch a row
 * another change of the batch reads, so deciding them all in one INSERT ... ON CONFLICT gives, change
 * for change, what the loop gives: the same ON CONFLICT condition (split by `reserved`, a value
 * EXCLUDED cannot carry), the same NULL for an offer of what the MAC already holds bound, the same
 * NOTIFY rows. Anything else (a release, a decline, an address moving between MACs, a MAC twice in one
 * batch) takes migration 4's loop, unchanged. The test compares both on random batches.
 */
export const LEASE_COMMIT_V5 = `
CREATE OR REPLACE FUNCTION rolecast_lease_commit(batch jsonb, origin text) RETURNS boolean[] LANGUAGE plpgsql AS $$
DECLARE
  x     jsonb;
  r     boolean;
  fast  boolean;
  res   boolean[] := '{}';
  items text[];
  head  text := '{"s" : ' || to_json(origin)::text || ', "l" : [';
  note  text := '';
  item  text;
BEGIN
  -- Every (network, address) and (network, MAC) of the batch, locked in one global order (as migration 4).
  PERFORM count(pg_advisory_xact_lock(s.key)) FROM (
    SELECT DISTINCT v.key FROM jsonb_array_elements(batch) AS e(value),
      LATERAL (VALUES (hashtextextended('a|' || (e.value->>'network') || '|' || (e.value->>'ip'), 0)),
                      (hashtextextended('m|' || (e.value->>'network') || '|' || (e.value->>'mac'), 0))) AS v(key)
    ORDER BY v.key OFFSET 0) s;

  -- The fast path: checked and, when it holds, applied in one statement (the locks make the check stand).
  WITH b AS (
    SELECT * FROM ROWS FROM (jsonb_to_recordset(batch) AS (network text, mac text, ip text, state text, "expiresAt" text, host text, reserved boolean))
      WITH ORDINALITY AS x(network, mac, ip, state, exp, host, reserved, n)),
  ok AS (
    SELECT count(*) > 0 AND count(*) = count(DISTINCT (b.network, b.mac)) AND count(*) = count(DISTINCT (b.network, b.ip))
           AND bool_and(b.state IN ('offered', 'bound'))
           AND NOT EXISTS (SELECT 1 FROM b JOIN leases l ON l.network = b.network AND l.ip = b.ip AND l.mac <> b.mac) AS fast
    FROM b),
  res_up AS (
    INSERT INTO leases AS l (network, mac, ip, state, expires_at, host, server)
    SELECT b.network, b.mac, b.ip, b.state, b.exp::timestamptz, b.host, origin FROM b
      WHERE coalesce(b.reserved, false) AND (SELECT ok.fast FROM ok)
    ON CONFLICT (network, mac) DO UPDATE
      SET ip = EXCLUDED.ip, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, host = EXCLUDED.host,
          server = EXCLUDED.server, updated_at = now()
      WHERE NOT (EXCLUDED.state = 'offered' AND l.state = 'bound' AND l.ip = EXCLUDED.ip AND l.expires_at > now())
    RETURNING l.network, l.mac),
  pool_up AS (
    INSERT INTO leases AS l (network, mac, ip, state, expires_at, host, server)
    SELECT b.network, b.mac, b.ip, b.state, b.exp::timestamptz, b.host, origin FROM b
      WHERE NOT coalesce(b.reserved, false) AND (SELECT ok.fast FROM ok)
    ON CONFLICT (network, mac) DO UPDATE
      SET ip = EXCLUDED.ip, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, host = EXCLUDED.host,
          server = EXCLUDED.server, updated_at = now()
      WHERE NOT (EXCLUDED.state = 'offered' AND l.state = 'bound' AND l.ip = EXCLUDED.ip AND l.expires_at > now())
        AND (l.ip = EXCLUDED.ip OR l.server = EXCLUDED.server OR l.state NOT IN ('offered', 'bound') OR l.expires_at <= now())
    RETURNING l.network, l.mac),
  done AS (SELECT network, mac FROM res_up UNION ALL SELECT network, mac FROM pool_up)
  SELECT (SELECT ok.fast FROM ok),
         array_agg(CASE WHEN d.mac IS NOT NULL THEN true
                        WHEN b.state = 'offered' AND EXISTS (SELECT 1 FROM leases l WHERE l.network = b.network AND l.mac = b.mac
                               AND l.ip = b.ip AND l.state = 'bound' AND l.expires_at > now()) THEN NULL
                        ELSE false END ORDER BY b.n),
         array_agg(json_build_array(b.network, b.mac, b.ip, b.state, b.exp, b.host)::text ORDER BY b.n) FILTER (WHERE d.mac IS NOT NULL)
    INTO fast, res, items
    FROM b LEFT JOIN done d ON d.network = b.network AND d.mac = b.mac;

  IF fast THEN
    FOREACH item IN ARRAY coalesce(items, '{}') LOOP
      IF note <> '' AND octet_length(head) + octet_length(note) + octet_length(item) > 7900 THEN
        PERFORM pg_notify('rolecast_leases', head || note || ']}');
        note := '';
      END IF;
      note := CASE WHEN note = '' THEN item ELSE note || ',' || item END;
    END LOOP;
    IF note <> '' THEN PERFORM pg_notify('rolecast_leases', head || note || ']}'); END IF;
    RETURN res;
  END IF;

  -- Migration 4's loop: one change after another, each seeing the ones before it.
  res := '{}';
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
`;
