-- The container of `#[tenancy::test(row_level, migrations = "tests/integration/migrations/rows/postgres")]`:
-- `guards` holding the rows of row-level tenants, each row's tenant in `tenant_id`.
CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    position text NOT NULL
);
