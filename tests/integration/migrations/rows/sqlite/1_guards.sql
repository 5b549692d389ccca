-- The container of the SQLite `#[tenancy::test(row_level)]` tests: `guards` holding the rows of
-- row-level tenants, each row's tenant in `tenant_id`.
CREATE TABLE guards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    position TEXT NOT NULL
);
