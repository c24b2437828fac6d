-- recallfs server schema, version 2: each account's peer key, the secret its
-- devices sign peer requests with (HMAC-SHA256). Readable by the account's
-- own sessions only, through row-level security.

CREATE TABLE recall.peer_keys (
  owner_id  uuid PRIMARY KEY REFERENCES recall.accounts ON DELETE CASCADE,
  key       bytea NOT NULL
);
ALTER TABLE recall.peer_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE recall.peer_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON recall.peer_keys
  USING (owner_id = (SELECT recall.current_owner()));
GRANT SELECT ON recall.peer_keys TO recall_client;

-- 32 bytes from Postgres's strong random source (gen_random_uuid), 244 of
-- them random.
CREATE FUNCTION recall.new_peer_key() RETURNS bytea LANGUAGE sql VOLATILE AS $$
  SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
$$;

INSERT INTO recall.peer_keys(owner_id, key)
  SELECT id, recall.new_peer_key() FROM recall.accounts
  ON CONFLICT DO NOTHING;

CREATE FUNCTION recall.give_peer_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO recall.peer_keys(owner_id, key) VALUES (NEW.id, recall.new_peer_key());
  RETURN NULL;
END
$$;
CREATE TRIGGER give_peer_key AFTER INSERT ON recall.accounts
  FOR EACH ROW EXECUTE FUNCTION recall.give_peer_key();
