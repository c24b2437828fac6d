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
-- stamped `stamp_ms`: "notes (conflicted copy 2026-11-23).txt". The stem
-- is shortened (by characters, counting bytes) so that the name stays
-- within 255 bytes, a file name's limit.
CREATE FUNCTION recall.conflict_name(name text, stamp_ms bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  tag  text := ' (conflicted copy ' ||
               to_char(to_timestamp(coalesce(stamp_ms, 0) / 1000.0) AT TIME ZONE 'UTC',
                       'YYYY-MM-DD') || ')';
  ext  text := coalesce(substring(name FROM '(\.[^./ ]{1,16})$'), '');
  stem text;
BEGIN
  IF ext = name THEN
    ext := '';  -- a dotfile: ".bashrc (conflicted copy ...)"
  END IF;
  stem := left(name, length(name) - length(ext));
  WHILE octet_length(stem) + octet_length(tag) + octet_length(ext) > 255 LOOP
    stem := left(stem, length(stem) - 1);
  END LOOP;
  RETURN stem || tag || ext;
END
$$;
GRANT EXECUTE ON FUNCTION recall.conflict_name(text, bigint) TO recall_client;
