/**
 * The PostgreSQL schema as versioned migrations: plain SQL, applied in order at start, each in its own
 * transaction with its number recorded in rolecast_schema. Several servers starting at once take a
 * transaction-scoped advisory lock, so exactly one applies a migration and the others find it done.
 * Why not node-pg-migrate: it brings a CLI and a JS migration DSL for what is here ~60 lines of SQL
 * and a 30-line runner; the SQL lives in this module (not .sql files) so the TypeScript build carries
 * it into dist/ with nothing to copy. A migration is never edited once released: add the next one.
 */
import type pg from 'pg';
import { RolecastError } from '../../errors.js';
import { LEASE_COMMIT_V4 } from './lease-sql.js';
import { LEASE_COMMIT_V5 } from './lease-sql-v5.js';
import { LEASE_COMMIT_V6 } from './lease-sql-v6.js';

export interface Migration { version: number; name: string; sql: string }

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'leases, events, served, discovered, power, profiles',
    sql: `
-- Kea-style shared lease table: one row per (network, MAC); an address belongs to one MAC per network.
CREATE TABLE leases (
  network    text NOT NULL,
  mac        text NOT NULL,
  ip         text NOT NULL,
  state      text NOT NULL CHECK (state IN ('offered', 'bound', 'declined', 'released', 'expired')),
  expires_at timestamptz NOT NULL,
  host       text,
  server     text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (network, mac),
  UNIQUE (network, ip)
);

-- The boot-event log: append-only; the id orders it site-wide.
CREATE TABLE events (
  id      bigserial PRIMARY KEY,
  mac     text NOT NULL,
  stage   text NOT NULL,
  at      timestamptz NOT NULL,
  host    text,
  detail  text,
  address text,
  server  text NOT NULL
);
CREATE INDEX events_mac_id ON events (mac, id);

CREATE TABLE served (
  mac  text PRIMARY KEY,
  host text,
  role text NOT NULL,
  hash text NOT NULL,
  at   timestamptz NOT NULL
);

CREATE TABLE discovered (
  mac        text PRIMARY KEY,
  rec        jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE power_actions (
  id    bigserial PRIMARY KEY,
  host  text NOT NULL,
  op    text NOT NULL,
  at    timestamptz NOT NULL,
  "by"  text,
  ok    boolean NOT NULL,
  state text,
  error text,
  ms    integer
);

-- Profiles: every version is a complete set of YAML files; texts are stored once by content hash.
CREATE TABLE profile_blobs (hash text PRIMARY KEY, text text NOT NULL);
CREATE TABLE profile_versions (
  version    integer PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  who        text NOT NULL,
  what       text NOT NULL,
  changed    text[] NOT NULL,
  set_hash   text NOT NULL
);
CREATE TABLE profile_files (
  version integer NOT NULL REFERENCES profile_versions,
  name    text NOT NULL,
  hash    text NOT NULL REFERENCES profile_blobs,
  PRIMARY KEY (version, name)
);
-- The current version: one row, locked by every edit (edits are serialised site-wide).
CREATE TABLE profile_head (
  one     boolean PRIMARY KEY DEFAULT true CHECK (one),
  version integer NOT NULL REFERENCES profile_versions
);
`,
  },
  {
    version: 2,
    name: 'lease commit function',
    sql: `
-- One lease change, as one subtransaction of a batch. Rules (see src/state/pg/leases.ts):
-- * a grant (offered/bound) of an address another MAC holds live is refused;
-- * one MAC, one offer site-wide: a grant at another address while another server's offer or lease
--   of this MAC is live is refused (that server answered first), unless the address is reserved;
-- * a server releases only a lease or offer it wrote last: a client's RELEASE goes to the server that
--   ACKed (RFC 2131 §4.4.6), and "the client chose another server's offer" must not drop that
--   server's ACK, which may have landed first;
-- * rows of other MACs that no longer hold the address (expired, released) give way;
-- * a live bound lease is never turned back into an offer (a late offer from a second server would
--   otherwise downgrade it, and its release would free an address a client holds): such an offer is
--   answered NULL, "granted, nothing stored".
CREATE FUNCTION rolecast_lease_one(x jsonb, origin text) RETURNS boolean LANGUAGE plpgsql AS $$
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
  ELSE
    PERFORM 1 FROM leases WHERE network = v_net AND ip = v_ip AND mac <> v_mac
      AND state <> 'released' AND expires_at > now();
    IF FOUND THEN RETURN false; END IF;
    BEGIN
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
      -- An offer of what this MAC already holds bound: nothing to change (NULL: "yes, and nothing stored").
      IF n = 0 AND v_state = 'offered' THEN
        PERFORM 1 FROM leases WHERE network = v_net AND mac = v_mac AND ip = v_ip AND state = 'bound' AND expires_at > now();
        IF FOUND THEN RETURN NULL; END IF;
      END IF;
    EXCEPTION WHEN unique_violation THEN
      RETURN false;
    END;
  END IF;
  IF n = 0 THEN RETURN false; END IF;
  PERFORM pg_notify('rolecast_leases', jsonb_build_object('s', origin, 'network', v_net, 'mac', v_mac, 'ip', v_ip,
    'state', v_state, 'expiresAt', x->>'expiresAt', 'host', x->>'host')::text);
  RETURN true;
END $$;

-- A batch of changes in one transaction (one WAL flush for many grants: group commit).
CREATE FUNCTION rolecast_lease_commit(batch jsonb, origin text) RETURNS boolean[] LANGUAGE plpgsql AS $$
DECLARE
  x   jsonb;
  res boolean[] := '{}';
BEGIN
  FOR x IN SELECT e.value FROM jsonb_array_elements(batch) WITH ORDINALITY AS e(value, n) ORDER BY e.n LOOP
    res := array_append(res, rolecast_lease_one(x, origin));
  END LOOP;
  RETURN res;
END $$;
`,
  },
  {
    version: 3,
    name: 'events.verified',
    sql: `
-- Phone-home events signed with the boot's key (true) or unsigned claims (false); NULL for what rolecast
-- itself observed (issue 16).
ALTER TABLE events ADD COLUMN verified boolean;
`,
  },
  {
    version: 4,
    name: 'lease commit without subtransactions, one NOTIFY per batch',
    sql: LEASE_COMMIT_V4,
  },
  {
    version: 5,
    name: 'lease commit: one set-based statement for a batch of independent grants',
    sql: LEASE_COMMIT_V5,
  },
  {
    version: 6,
    name: 'lease commit: the fast-path check by index (no scan of the lease table per batch); one loop, one NOTIFY chunking',
    sql: LEASE_COMMIT_V6,
  },
];

/** Apply every migration this database has not seen, in order. Safe to run from several servers at once. */
export async function migrate(client: pg.ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const applied: number[] = [];
  for (const m of migrations) {
    await client.query('BEGIN');
    try {
      // One server at a time past this point (even CREATE TABLE IF NOT EXISTS races); the lock ends
      // with the transaction.
      await client.query("SELECT pg_advisory_xact_lock(hashtext('rolecast_schema'))");
      await client.query('CREATE TABLE IF NOT EXISTS rolecast_schema (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      const seen = await client.query('SELECT 1 FROM rolecast_schema WHERE version = $1', [m.version]);
      if (seen.rowCount === 0) {
        await client.query(m.sql);
        await client.query('INSERT INTO rolecast_schema (version, name) VALUES ($1, $2)', [m.version, m.name]);
        applied.push(m.version);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw new RolecastError('E_STATE_SCHEMA', `database schema migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
    }
  }
  const newest = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM rolecast_schema');
  const known = migrations.at(-1)?.version ?? 0;
  if ((newest.rows[0]?.v ?? 0) > known) {
    throw new RolecastError('E_STATE_SCHEMA', `the database schema is version ${newest.rows[0]?.v}, newer than this rolecast knows (${known}): upgrade rolecast`);
  }
  return applied;
}
