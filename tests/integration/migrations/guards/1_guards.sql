-- The `guards` table of `tenancy_testdb::fixtures::POSTGRES` (the `Guard` model), as a tenant migration for
-- the tests written with `#[tenancy::test(migrations = "tests/integration/migrations/guards")]`.
CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    position text NOT NULL,
    age integer,
    inserted_at timestamptz NOT NULL DEFAULT now()
);
