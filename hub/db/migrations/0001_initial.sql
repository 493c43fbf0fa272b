-- The hub's first schema. {{id}} becomes each engine's auto-increment
-- primary key; times are Unix milliseconds (BIGINT) in both engines.

CREATE TABLE organisations (
	id {{id}},
	name TEXT NOT NULL UNIQUE,
	-- 1: projects only on the organisation's own data planes.
	enforce_own_dataplanes INTEGER NOT NULL DEFAULT 0,
	created BIGINT NOT NULL
);

CREATE TABLE users (
	id {{id}},
	email TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL DEFAULT '',
	oidc_issuer TEXT,
	oidc_subject TEXT,
	created BIGINT NOT NULL,
	UNIQUE (oidc_issuer, oidc_subject)
);

CREATE TABLE org_members (
	org_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
	PRIMARY KEY (org_id, user_id)
);

-- API tokens: only a hash is stored; lookup_id is the public part after
-- the berth_ prefix, so a token is found without comparing hashes.
CREATE TABLE tokens (
	id {{id}},
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	lookup_id TEXT NOT NULL UNIQUE,
	hash TEXT NOT NULL,
	name TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	last_used BIGINT,
	revoked BIGINT
);

-- Data planes: secrets (external IDs, S3-compatible admin keys) only in
-- sealed form (hub/secrets).
CREATE TABLE dataplanes (
	id {{id}},
	org_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('aws', 's3compat')),
	settings TEXT NOT NULL,
	sealed_secrets TEXT NOT NULL DEFAULT '{}',
	created BIGINT NOT NULL,
	UNIQUE (org_id, name)
);

CREATE TABLE projects (
	id {{id}},
	org_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	dataplane_id BIGINT NOT NULL REFERENCES dataplanes (id),
	prefix TEXT NOT NULL,
	created BIGINT NOT NULL,
	UNIQUE (org_id, name)
);

CREATE TABLE project_members (
	project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role TEXT NOT NULL CHECK (role IN ('admin', 'writer', 'reader')),
	PRIMARY KEY (project_id, user_id)
);

-- Background jobs, claimed by one replica at a time under a lease.
CREATE TABLE jobs (
	id {{id}},
	kind TEXT NOT NULL,
	payload TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
	worker TEXT,
	lease_until BIGINT,
	attempts INTEGER NOT NULL DEFAULT 0,
	result TEXT,
	created BIGINT NOT NULL,
	updated BIGINT NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (status, id);

-- Append-only audit log, hash-chained: hash = SHA-256(prev_hash || row).
CREATE TABLE audit_log (
	id {{id}},
	time BIGINT NOT NULL,
	actor TEXT NOT NULL,
	request_id TEXT NOT NULL,
	action TEXT NOT NULL,
	object TEXT NOT NULL,
	outcome TEXT NOT NULL,
	source_ip TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
