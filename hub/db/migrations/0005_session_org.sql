-- The organisation a browser session works in, chosen with the web UI's
-- switcher (API clients send the Berth-Organisation header instead).
-- NULL: the user's first organisation. The hub checks membership on every
-- request, so a stale value (membership ended) falls back to the first.
ALTER TABLE sessions ADD COLUMN org_id BIGINT REFERENCES organisations (id) ON DELETE SET NULL;
