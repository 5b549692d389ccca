//! The SQLite backend: statements sent as sqlx sends them, on the connection of the tenant's
//! own file.


use futures_util::future::BoxFuture;
use sqlx::Sqlite;

use crate::backend::{errors_module_hooks, plain_sending, Backend, Session};
use crate::tenant::Tenant;
use crate::value::scalars;

use super::errors;
use super::store::SqliteStore;
use super::SqliteDialect;

scalars!(Sqlite, branch = i64);
crate::relation::preload_with_in!(Sqlite);

impl Backend for Sqlite {
    type Dialect = SqliteDialect;
    type Mode = ();
    const DB_SYSTEM: &'static str = "sqlite";
    const CONTAINER: &'static str = "database file";
    const MAX_BIND_PARAMS: usize = 32_766;
    type Store = SqliteStore;

    plain_sending!();

    /// Never reached: a statement across tenants is refused on SQLite before it is built (its
    /// executor belongs to one tenant).
    fn first_without_table<'a>(
        _session: &'a mut Session<'_, Self>,
        _batch: &'a [Tenant],
        _table: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, sqlx::Error>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    errors_module_hooks!();
}
