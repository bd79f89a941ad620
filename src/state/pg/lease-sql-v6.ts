/**
 * Migration 6: the lease commit of migration 5, same rules and same answers, without a scan of the
 * whole lease table per batch, and with its two copies of migration 4 folded into one. Released with
 * migration 6; never edited once released: add the next migration.
 *
 * Why: migration 5 checked "no row holds one of the batch's addresses for another MAC" as a join of
 * the batch with the lease table inside the statement that then inserted the batch; PostgreSQL planned
 * it as a hash join over a sequential scan of the table (it cannot know a jsonb batch holds a few dozen
 * rows), so every batch read every lease: most of a small batch's cost at 1,000 leases, and growing
 * with the table. Here the check is a statement of its own that probes the (network, address) index
 * once per change, before the batch is written. The advisory locks (taken first, exactly as in
 * migrations 4 and 5) make the check stand until the transaction ends: every writer of the lease table
 * takes the locks of the addresses and MACs it touches, so no row can start holding one of the batch's
 * addresses meanwhile. The write, the answers and the notification rows are migration 5's.
 *
 * Migration 5 also repeated migration 4's per-change loop and its NOTIFY chunking (twice each): here
 * the loop is rolecast_lease_loop and the chunking rolecast_lease_notify, each written once and used by
 * both paths. The payloads are the same: rows of [network, mac, ip, state, expiresAt, host], several
 * per notification, each notification under PostgreSQL's 8000 bytes.
 */
export const LEASE_COMMIT_V6 = `
-- The stored changes' rows, as few notifications as fit under the 8000-byte payload limit.
CREATE FUNCTION rolecast_lease_notify(origin text, items text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  head text := '{"s" : ' || to_json(origin)::text || ', "l" : [';
  note text := '';
  item text;
BEGIN
  FOREACH item IN ARRAY coalesce(items, '{}') LOOP
    IF note <> '' AND octet_length(head) + octet_length(note) + octet_length(item) > 7900 THEN
      PERFORM pg_notify('rolecast_leases', head || note || ']}');
      note := '';
    END IF;
    note := CASE WHEN note = '' THEN item ELSE note || ',' || item END;
  END LOOP;
  IF note <> '' THEN PERFORM pg_notify('rolecast_leases', head || note || ']}'); END IF;
END $$;

-- Migration 4's loop: one change after another, each seeing the ones before it.
CREATE FUNCTION rolecast_lease_loop(batch jsonb, origin text) RETURNS boolean[] LANGUAGE plpgsql AS $$
DECLARE
  x     jsonb;
  r     boolean;
  res   boolean[] := '{}';
  items text[] := '{}';
BEGIN
  FOR x IN SELECT e.value FROM jsonb_array_elements(batch) WITH ORDINALITY AS e(value, n) ORDER BY e.n LOOP
    r := rolecast_lease_apply(x, origin);
    res := array_append(res, r);
    IF r THEN
      items := array_append(items, json_build_array(x->>'network', x->>'mac', x->>'ip', x->>'state', x->>'expiresAt', x->>'host')::text);
    END IF;
  END LOOP;
  PERFORM rolecast_lease_notify(origin, items);
  RETURN res;
END $$;

CREATE OR REPLACE FUNCTION rolecast_lease_commit(batch jsonb, origin text) RETURNS boolean[] LANGUAGE plpgsql AS $$
DECLARE
  fast  boolean;
  res   boolean[];
  items text[];
BEGIN
  -- Every (network, address) and (network, MAC) of the batch, locked in one global order (as migration 4).
  PERFORM count(pg_advisory_xact_lock(s.key)) FROM (
    SELECT DISTINCT v.key FROM jsonb_array_elements(batch) AS e(value),
      LATERAL (VALUES (hashtextextended('a|' || (e.value->>'network') || '|' || (e.value->>'ip'), 0)),
                      (hashtextextended('m|' || (e.value->>'network') || '|' || (e.value->>'mac'), 0))) AS v(key)
    ORDER BY v.key OFFSET 0) s;

  -- The fast path applies (migration 5's conditions): every change a grant, no MAC and no address twice,
  -- and no row holding one of the addresses for another MAC — one index probe per change.
  SELECT count(*) > 0 AND count(*) = count(DISTINCT (b.network, b.mac)) AND count(*) = count(DISTINCT (b.network, b.ip))
         AND bool_and(b.state IN ('offered', 'bound'))
         AND bool_and(NOT EXISTS (SELECT 1 FROM leases l WHERE l.network = b.network AND l.ip = b.ip AND l.mac <> b.mac))
    INTO fast
    FROM jsonb_to_recordset(batch) AS b(network text, mac text, ip text, state text);
  IF fast IS NOT TRUE THEN RETURN rolecast_lease_loop(batch, origin); END IF;

  -- Migration 5's write, answers and notification rows.
  WITH b AS (
    SELECT * FROM ROWS FROM (jsonb_to_recordset(batch) AS (network text, mac text, ip text, state text, "expiresAt" text, host text, reserved boolean))
      WITH ORDINALITY AS x(network, mac, ip, state, exp, host, reserved, n)),
  res_up AS (
    INSERT INTO leases AS l (network, mac, ip, state, expires_at, host, server)
    SELECT b.network, b.mac, b.ip, b.state, b.exp::timestamptz, b.host, origin FROM b WHERE coalesce(b.reserved, false)
    ON CONFLICT (network, mac) DO UPDATE
      SET ip = EXCLUDED.ip, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, host = EXCLUDED.host,
          server = EXCLUDED.server, updated_at = now()
      WHERE NOT (EXCLUDED.state = 'offered' AND l.state = 'bound' AND l.ip = EXCLUDED.ip AND l.expires_at > now())
    RETURNING l.network, l.mac),
  pool_up AS (
    INSERT INTO leases AS l (network, mac, ip, state, expires_at, host, server)
    SELECT b.network, b.mac, b.ip, b.state, b.exp::timestamptz, b.host, origin FROM b WHERE NOT coalesce(b.reserved, false)
    ON CONFLICT (network, mac) DO UPDATE
      SET ip = EXCLUDED.ip, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, host = EXCLUDED.host,
          server = EXCLUDED.server, updated_at = now()
      WHERE NOT (EXCLUDED.state = 'offered' AND l.state = 'bound' AND l.ip = EXCLUDED.ip AND l.expires_at > now())
        AND (l.ip = EXCLUDED.ip OR l.server = EXCLUDED.server OR l.state NOT IN ('offered', 'bound') OR l.expires_at <= now())
    RETURNING l.network, l.mac),
  done AS (SELECT network, mac FROM res_up UNION ALL SELECT network, mac FROM pool_up)
  SELECT array_agg(CASE WHEN d.mac IS NOT NULL THEN true
                        WHEN b.state = 'offered' AND EXISTS (SELECT 1 FROM leases l WHERE l.network = b.network AND l.mac = b.mac
                               AND l.ip = b.ip AND l.state = 'bound' AND l.expires_at > now()) THEN NULL
                        ELSE false END ORDER BY b.n),
         array_agg(json_build_array(b.network, b.mac, b.ip, b.state, b.exp, b.host)::text ORDER BY b.n) FILTER (WHERE d.mac IS NOT NULL)
    INTO res, items
    FROM b LEFT JOIN done d ON d.network = b.network AND d.mac = b.mac;
  PERFORM rolecast_lease_notify(origin, items);
  RETURN res;
END $$;
`;
