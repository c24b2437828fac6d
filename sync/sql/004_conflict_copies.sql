-- recallfs server schema, version 4: an edit of a file's content made
-- without seeing another device's edit of it keeps both versions. A pushed
-- asset row carries the content its edit started from (content_base, the
-- content its device last knew the server to have) and the device whose
-- edit its content is (content_device). When the server's content is
-- neither that nor the pushed one, and another device's, the two edits
-- were made apart: the newer stays in the file (last writer wins, as
-- before) and the other goes into a new file next to it,
-- "NAME (conflicted copy DATE).EXT" (sync/sync_statements.cpp,
-- upsert_sql), which every device then pulls. (A device's own content is
-- never a conflict: a push it did not see succeed, sent again after a
-- later edit, names a base older than what the server has.) Rows pushed by
-- older devices carry neither and merge as before.

ALTER TABLE recall.assets ADD COLUMN content_base text;
ALTER TABLE recall.assets ADD COLUMN content_device text;

-- The name of a conflicted copy of a file named `name`, made from an edit
-- stamped `stamp_ms`: "notes (conflicted copy 2026-11-23).txt". A long name
-- is shortened so that the copy's stays a valid file name.
CREATE FUNCTION recall.conflict_name(name text, stamp_ms bigint) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN octet_length(stem) > 200 THEN left(stem, 50) ELSE stem END ||
         ' (conflicted copy ' ||
         to_char(to_timestamp(coalesce(stamp_ms, 0) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') ||
         ')' || ext
  FROM (SELECT CASE WHEN e = '' OR e = name THEN name ELSE left(name, length(name) - length(e)) END
                 AS stem,
               CASE WHEN e = '' OR e = name THEN '' ELSE e END AS ext
        FROM (SELECT coalesce(substring(name FROM '(\.[^./ ]{1,16})$'), '') AS e) x) y
$$;
GRANT EXECUTE ON FUNCTION recall.conflict_name(text, bigint) TO recall_client;
