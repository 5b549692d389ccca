//! PostgreSQL's SQL dialect, and how a session sends.

use crate::statement::Dialect;

/// PostgreSQL's SQL: `"double quoted"` identifiers, `$n` placeholders, `RETURNING`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PgDialect;

impl Dialect for PgDialect {
    const RETURNING: bool = true;
    const NUMBERED_PARAMS: bool = true;
    const FLOAT_TYPE: &'static str = "DOUBLE PRECISION";
    const QUOTE: char = '"';
    const PLACEHOLDER: char = '$';
    const CONTAINERS_WITH_TABLE: Option<[&'static str; 2]> = Some([
        "SELECT n.nspname::text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = ",
        " AND n.nspname IN (",
    ]);
}

/// How a PostgreSQL session sends its statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgMode {
    /// Through PgBouncer in transaction mode: unnamed statements, each inside a transaction.
    pub(crate) pgbouncer: bool,
    /// Row-level security: a row-level tenant's statement runs in a transaction that first
    /// runs this statement, which checks (under a `KEY SHARE` lock on its registry row) that
    /// the tenant is placed in the container named and says it to the server's policies
    /// (`set_config('tenancy.tenant', …, true)`).
    pub(crate) row_security: Option<&'static str>,
}
