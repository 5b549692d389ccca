//! The SQLite backend: statements sent as sqlx sends them, on the connection of the tenant's
//! own file.


use sqlx::Sqlite;

use crate::backend::{errors_module_hooks, plain_sending, Backend};
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

    errors_module_hooks!();
}
