-- A container's migration for row-level tenants (README, "Row-level tenants"): `guards` holds
-- the rows of many tenants, each row's tenant in `tenant_id`.
CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    position text NOT NULL
);
CREATE INDEX guards_tenant_id ON guards (tenant_id);
