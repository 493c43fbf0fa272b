-- Just-in-time access (package access): requests for escalations, every
-- decision on them, and the grants they cover. A grant is one IAM Identity
-- Center account assignment (user, account, permission set); it is shared
-- by every request that names the same three, which is how overlapping
-- requests keep it alive until the last ends.

CREATE TABLE access_requests (
	id {{id}},
	requester TEXT NOT NULL,
	account TEXT NOT NULL,
	permission_set TEXT NOT NULL,
	duration_ms BIGINT NOT NULL,
	reason TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked', 'expired')),
	created BIGINT NOT NULL,
	principal_id TEXT NOT NULL,
	account_id TEXT NOT NULL,
	permission_set_arn TEXT NOT NULL,
	approvers TEXT NOT NULL,
	decided_by TEXT NOT NULL DEFAULT '',
	decided BIGINT,
	decision_reason TEXT NOT NULL DEFAULT '',
	expires BIGINT
);
CREATE INDEX access_requests_requester ON access_requests (requester, id);
CREATE INDEX access_requests_status ON access_requests (status, expires);
CREATE INDEX access_requests_key ON access_requests (principal_id, account_id, permission_set_arn, status);

CREATE TABLE access_decisions (
	id {{id}},
	request_id BIGINT NOT NULL REFERENCES access_requests (id),
	actor TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	time BIGINT NOT NULL
);
CREATE INDEX access_decisions_request ON access_decisions (request_id, id);

-- present: the assignment exists as far as berth saw a call succeed.
-- due: work is needed at next_attempt (a decision, or a failed call to
-- retry); version counts decisions so a worker's outcome clears due only if
-- nothing changed while it worked. worker and lease_until are the claim.
CREATE TABLE access_grants (
	id {{id}},
	principal_id TEXT NOT NULL,
	account_id TEXT NOT NULL,
	permission_set_arn TEXT NOT NULL,
	user_email TEXT NOT NULL,
	account TEXT NOT NULL,
	permission_set TEXT NOT NULL,
	present INTEGER NOT NULL DEFAULT 0,
	due INTEGER NOT NULL DEFAULT 1,
	version BIGINT NOT NULL DEFAULT 1,
	next_attempt BIGINT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	worker TEXT,
	lease_until BIGINT,
	UNIQUE (principal_id, account_id, permission_set_arn)
);
CREATE INDEX access_grants_due ON access_grants (due, next_attempt);
