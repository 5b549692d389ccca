-- Runs in each tenant's schema: unqualified names resolve there. Written to run on plain
-- PostgreSQL and on Citus alike (README, "Migrations that run on both"): no trigger, and
-- foreign keys only within the tenant.
CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    position text NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The quickstart looks guards up by position. (On Citus, tenancy sends an index statement as
-- a command of its own: nothing to do here.)
CREATE INDEX guards_position ON guards (position);
