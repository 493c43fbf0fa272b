-- Browser sessions and the approvals of berth login's browser flow.

-- A session is found by the SHA-256 of its cookie value: the cookie itself
-- is never stored, so a database dump holds nothing a browser could replay.
-- Its CSRF token is derived from the cookie value (HMAC), so it needs no
-- column either. A session ends at expires, or earlier when it was idle
-- until idle_expires (pushed forward as it is used).
CREATE TABLE sessions (
	id {{id}},
	hash TEXT NOT NULL UNIQUE,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	idle_timeout_ms BIGINT NOT NULL,
	idle_expires BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires);

-- berth login without --token: the CLI opens a request, a signed-in user
-- approves or denies it in the browser, and the CLI collects a new API
-- token once with its poll secret, of which only the hash is stored.
CREATE TABLE login_requests (
	id {{id}},
	public_id TEXT NOT NULL UNIQUE,
	poll_hash TEXT NOT NULL,
	user_code TEXT NOT NULL,
	host TEXT NOT NULL,
	client_name TEXT NOT NULL,
	source_ip TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'collected')),
	user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	decided BIGINT
);
CREATE INDEX login_requests_expires ON login_requests (expires);

-- The organisation an audit entry belongs to (that of its actor), so an
-- organisation's admins read their own entries only. NULL: no
-- organisation (anonymous requests); only the database shows those.
ALTER TABLE audit_log ADD COLUMN org_id BIGINT;
CREATE INDEX audit_log_org ON audit_log (org_id, id);
