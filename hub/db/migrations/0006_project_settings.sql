-- Settings a project's admins change (PATCH /api/v1/projects/{project}):
-- a description, and the minisign public keys (one RWQ... line each) that
-- the hub checks the signatures of the project's versions against. Name,
-- data plane and prefix stay as created: the artifacts live under them.

ALTER TABLE projects ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN trusted_keys TEXT NOT NULL DEFAULT '';
