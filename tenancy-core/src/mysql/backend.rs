//! The MySQL / MariaDB backend: statements sent as sqlx sends them; writes read their row back
//! (no `RETURNING`), except an insert through a handle on MariaDB 10.5+ (`INSERT … RETURNING`).


use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::MySql;

use super::errors;
use super::store::MySqlStore;
use super::write;
use super::{MySqlDialect, MySqlMode};
use crate::backend::{
    errors_module_hooks, plain_sending, About, Backend, Conflict, Session, SharedPool,
};
use crate::error::Error;
use crate::table::TableDef;
use crate::value::{scalars, BindColumn};

scalars!(MySql, branch = i64);
crate::exec::connection_executor!(MySqlConnection, MySql);
crate::relation::preload_with_in!(MySql);

impl SharedPool for MySql {}

impl Backend for MySql {
    type Dialect = MySqlDialect;
    type Mode = MySqlMode;
    const DB_SYSTEM: &'static str = "mysql";
    const CONTAINER: &'static str = "database";
    const MAX_BIND_PARAMS: usize = 65_535;
    type Store = MySqlStore;

    plain_sending!();

    fn mode_of(store: &MySqlStore) -> MySqlMode {
        store.mode()
    }

    fn insert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
    ) -> impl std::future::Future<Output = Result<Vec<MySqlRow>, Error>> + Send + 's {
        write::insert_rows(session, about, table, rows)
    }

    async fn insert_one<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        row: &'s [&'s dyn BindColumn<Self>; 1],
    ) -> Result<Option<MySqlRow>, Error> {
        Ok(write::insert_rows(session, about, table, row).await?.pop())
    }

    fn update_row<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        row: &'s dyn BindColumn<Self>,
        columns: &'s [usize],
    ) -> impl std::future::Future<Output = Result<Option<MySqlRow>, Error>> + Send + 's {
        write::update_row(session, about, table, row, columns)
    }

    fn upsert_rows<'s>(
        session: &'s mut Session<'_, Self>,
        about: About<'s>,
        table: &'static TableDef,
        rows: &'s [&'s dyn BindColumn<Self>],
        conflict: Conflict<'s>,
    ) -> impl std::future::Future<Output = Result<Vec<MySqlRow>, Error>> + Send + 's {
        write::upsert_rows(session, about, table, rows, conflict)
    }

    errors_module_hooks!();
}
