-- Background jobs of data planes: whose they are, their approval (a deploy
-- runs only the change sets of an approved plan) and their events.

ALTER TABLE jobs ADD COLUMN org_id BIGINT REFERENCES organisations (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD COLUMN dataplane_id BIGINT REFERENCES dataplanes (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD COLUMN approved_by BIGINT REFERENCES users (id);
ALTER TABLE jobs ADD COLUMN approved BIGINT;
ALTER TABLE jobs ADD COLUMN deploy_job BIGINT;

-- When a deploy job of the hub last succeeded for the data plane: what
-- "the organisation's own data plane" means for enforced usage.
ALTER TABLE dataplanes ADD COLUMN deployed BIGINT;

CREATE TABLE job_events (
	id {{id}},
	job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	time BIGINT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, id);
