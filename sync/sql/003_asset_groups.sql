-- recallfs server schema, version 3: an asset's columns merge as three
-- groups, each stamped with when a device last changed it (see
-- catalog/catalog_internal.h): content (sha256, bytes, mime, page_count,
-- mtime_ns), place (work_id, folder, filename) and attributes (role, mode).
-- A push keeps each group's newest change, so an edit made on one device
-- and a rename made on another both land (a whole-row last writer would
-- drop one of them).

ALTER TABLE recall.assets ADD COLUMN content_ms bigint;
ALTER TABLE recall.assets ADD COLUMN place_ms bigint;
ALTER TABLE recall.assets ADD COLUMN attrs_ms bigint;

-- Rows from before changed all their groups when they last changed. Not a
-- change to pull: the devices stamp their own rows so too (catalog schema 4).
ALTER TABLE recall.assets DISABLE TRIGGER stamp;
ALTER TABLE recall.assets DISABLE TRIGGER notify;
UPDATE recall.assets SET content_ms = updated_ms, place_ms = updated_ms, attrs_ms = updated_ms;
ALTER TABLE recall.assets ENABLE TRIGGER stamp;
ALTER TABLE recall.assets ENABLE TRIGGER notify;

-- What a push naming bytes and a drop of bytes look up (SyncEngine's
-- holder check and confirm_drops): the rows naming a blob, its holders.
CREATE INDEX assets_by_sha256 ON recall.assets (owner_id, sha256) WHERE NOT deleted;
CREATE INDEX device_blobs_by_sha256 ON recall.device_blobs (owner_id, sha256) WHERE NOT deleted;
