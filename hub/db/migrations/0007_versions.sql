-- An index of each project's versions, so a page of a project with
-- thousands of versions is one keyset query instead of a listing of every
-- region. The stores stay the truth; the hub keeps this in step (a full
-- listing replaces it, a stage through the hub adds to it).
--
-- sort_key is artifact.SortKey(version): bytes that order as semver
-- precedence, compared bytewise by both engines whatever the collation.
-- regions is a JSON array of the region names holding the version.
-- indexed is when the row was last written from the stores, so a listing
-- taken before a version was added does not delete it.
CREATE TABLE project_versions (
	project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	version TEXT NOT NULL,
	sort_key {{bytes}} NOT NULL,
	created BIGINT NOT NULL,
	regions TEXT NOT NULL,
	prerelease INTEGER NOT NULL DEFAULT 0,
	staged_by TEXT NOT NULL DEFAULT '',
	indexed BIGINT NOT NULL,
	PRIMARY KEY (project_id, version)
);
CREATE UNIQUE INDEX project_versions_order ON project_versions (project_id, sort_key);

-- When a full listing of every region last replaced the project's index
-- (NULL: never), and how many versions it holds: kept with every change,
-- since counting 10,000 rows costs more than the page itself.
ALTER TABLE projects ADD COLUMN versions_synced BIGINT;
ALTER TABLE projects ADD COLUMN versions_count BIGINT NOT NULL DEFAULT 0;
