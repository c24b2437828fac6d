-- recallfs server schema, version 1. Applied by `recallfs server init`
-- (sync/server_admin.cpp), inside one transaction.
--
-- Every library table carries owner_id (the account), rev (one sequence for
-- all tables, set by trigger on every insert and update), txid (the writing
-- transaction, for safe pull cursors) and deleted (tombstones). Row-level
-- security, forced, lets a connection see and change only the rows of the
-- account whose session token it presents with
--   SELECT set_config('recall.token', '<token>', true);
-- owner_id is filled from that token by default: a client never sends one.

CREATE SCHEMA IF NOT EXISTS recall;

-- ---- accounts and sessions (operator only; clients have no grant here) ----

CREATE TABLE recall.accounts (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recall.sessions (
  token_hash  bytea PRIMARY KEY,          -- sha256 of the token; never the token
  account_id  uuid NOT NULL REFERENCES recall.accounts ON DELETE CASCADE,
  expires_at  timestamptz,                -- NULL: does not expire
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- The account of the token this transaction presents, or NULL. STABLE, and
-- policies call it as (SELECT recall.current_owner()): an InitPlan that
-- Postgres evaluates once per statement, not once per row.
CREATE FUNCTION recall.current_owner() RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, recall
AS $$
  SELECT s.account_id
  FROM recall.sessions s
  WHERE s.token_hash = sha256(convert_to(current_setting('recall.token', true), 'UTF8'))
    AND (s.expires_at IS NULL OR s.expires_at > now())
$$;

-- Who am I: the account (id, name) of the presented token.
CREATE FUNCTION recall.whoami(OUT id uuid, OUT name text)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, recall
AS $$
  SELECT a.id, a.name FROM recall.accounts a WHERE a.id = recall.current_owner()
$$;

-- ---- revisions and notifications -------------------------------------------

CREATE SEQUENCE recall.rev;

CREATE FUNCTION recall.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.rev := nextval('recall.rev');
  NEW.txid := pg_current_xact_id();
  RETURN NEW;
END
$$;

-- Wakes the account's other devices; identical notifications of one
-- transaction are delivered once.
CREATE FUNCTION recall.notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('recall_' || replace(NEW.owner_id::text, '-', ''), '');
  RETURN NULL;
END
$$;

-- ---- the library tables (columns as catalog/synced_tables.cpp) -------------

CREATE TABLE recall.devices (
  owner_id      uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  id            uuid NOT NULL,
  name          text NOT NULL,
  peer_address  text,
  last_seen_ms  bigint,
  created_ms    bigint,
  deleted       boolean NOT NULL DEFAULT false,
  rev           bigint NOT NULL,
  txid          xid8 NOT NULL,
  PRIMARY KEY (owner_id, id)
);

CREATE TABLE recall.works (
  owner_id    uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  id          uuid NOT NULL,
  title       text,
  subtitle    text,
  work_type   text,
  authors     jsonb,
  year        bigint,
  doi         text,
  arxiv_id    text,
  mode        bigint,
  mtime_ns    bigint,
  created_ms  bigint,
  updated_ms  bigint,
  deleted     boolean NOT NULL DEFAULT false,
  rev         bigint NOT NULL,
  txid        xid8 NOT NULL,
  PRIMARY KEY (owner_id, id)
);

CREATE TABLE recall.folders (
  owner_id    uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  id          uuid NOT NULL,
  work_id     uuid,
  path        text,
  mode        bigint,
  mtime_ns    bigint,
  created_ms  bigint,
  updated_ms  bigint,
  deleted     boolean NOT NULL DEFAULT false,
  rev         bigint NOT NULL,
  txid        xid8 NOT NULL,
  PRIMARY KEY (owner_id, id)
);

CREATE TABLE recall.assets (
  owner_id    uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  id          uuid NOT NULL,
  work_id     uuid,
  folder      text,
  filename    text,
  sha256      text,
  role        text,
  mime        text,
  bytes       bigint,
  page_count  bigint,
  mode        bigint,
  mtime_ns    bigint,
  created_ms  bigint,
  updated_ms  bigint,
  deleted     boolean NOT NULL DEFAULT false,
  rev         bigint NOT NULL,
  txid        xid8 NOT NULL,
  PRIMARY KEY (owner_id, id)
);

CREATE TABLE recall.edges (
  owner_id    uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  id          uuid NOT NULL,
  from_id     uuid,
  to_id       uuid,
  relation    text,
  folder      text,
  name        text,
  created_ms  bigint,
  updated_ms  bigint,
  deleted     boolean NOT NULL DEFAULT false,
  rev         bigint NOT NULL,
  txid        xid8 NOT NULL,
  PRIMARY KEY (owner_id, id)
);

CREATE TABLE recall.blobs_meta (
  owner_id        uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  sha256          text NOT NULL,
  size            bigint,
  mime            text,
  filename        text,
  page_count      bigint,
  image_width     bigint,
  image_height    bigint,
  pdf_metadata    jsonb,
  chunk_size      bigint,
  chunk_manifest  text,                   -- hex, 64 digits per chunk
  created_ms      bigint,
  deleted         boolean NOT NULL DEFAULT false,
  rev             bigint NOT NULL,
  txid            xid8 NOT NULL,
  PRIMARY KEY (owner_id, sha256)
);

CREATE TABLE recall.device_blobs (
  owner_id    uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  id          uuid NOT NULL,
  device_id   uuid,
  sha256      text,
  present     bigint,
  health      text,
  local_path  text,
  mtime_ms    bigint,
  deleted     boolean NOT NULL DEFAULT false,
  rev         bigint NOT NULL,
  txid        xid8 NOT NULL,
  PRIMARY KEY (owner_id, id)
);

CREATE TABLE recall.replication_jobs (
  owner_id           uuid NOT NULL DEFAULT recall.current_owner() REFERENCES recall.accounts ON DELETE CASCADE,
  id                 uuid NOT NULL,
  sha256             text,
  from_source        text,
  to_destination     text,
  status             text,
  progress           double precision,
  bytes_transferred  bigint,
  attempts           bigint,
  error              text,
  priority           bigint,
  created_ms         bigint,
  updated_ms         bigint,
  deleted            boolean NOT NULL DEFAULT false,
  rev                bigint NOT NULL,
  txid               xid8 NOT NULL,
  PRIMARY KEY (owner_id, id)
);

-- ---- per table: pull index, triggers, row-level security -------------------

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['devices', 'works', 'folders', 'assets', 'edges', 'blobs_meta',
                           'device_blobs', 'replication_jobs'] LOOP
    EXECUTE format('CREATE INDEX %I ON recall.%I (owner_id, txid, rev)', t || '_pull', t);
    EXECUTE format('CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON recall.%I
                    FOR EACH ROW EXECUTE FUNCTION recall.stamp()', t);
    EXECUTE format('CREATE TRIGGER notify AFTER INSERT OR UPDATE ON recall.%I
                    FOR EACH ROW EXECUTE FUNCTION recall.notify()', t);
    EXECUTE format('ALTER TABLE recall.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE recall.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY owner_only ON recall.%I
                    USING (owner_id = (SELECT recall.current_owner()))
                    WITH CHECK (owner_id = (SELECT recall.current_owner()))', t);
  END LOOP;
END
$$;

-- ---- the role clients connect as: no BYPASSRLS, no access to sessions ------

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recall_client') THEN
    CREATE ROLE recall_client NOLOGIN NOBYPASSRLS;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA recall TO recall_client;
GRANT SELECT, INSERT, UPDATE ON recall.devices, recall.works, recall.folders, recall.assets,
  recall.edges, recall.blobs_meta, recall.device_blobs, recall.replication_jobs TO recall_client;
GRANT USAGE ON SEQUENCE recall.rev TO recall_client;
GRANT EXECUTE ON FUNCTION recall.current_owner(), recall.whoami() TO recall_client;
REVOKE ALL ON recall.accounts, recall.sessions FROM recall_client;
