//! The PostgreSQL backend: its statements sent on a session (behind PgBouncer, or prepared and
//! re-prepared once after a migration changed a result type), preload keys as one array.


use futures_util::stream::BoxStream;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection, Postgres};

use super::errors::{self, is_stale_plan};
use super::store::PgStore;
use super::{PgDialect, PgMode};
use crate::backend::{errors_module_hooks, Backend, Each, Session, SharedPool};
use crate::filter::{Column, Filter};
use crate::model::Model;
use crate::relation::PreloadKey;
use crate::statement::{Op, Refusal, RowsOf, Statement};
use crate::tenant::Tenant;
use crate::value::{scalars, SqlValue};

scalars!(Postgres, branch = i32);
crate::exec::connection_executor!(PgConnection, Postgres);

impl SharedPool for Postgres {}

/// On PostgreSQL a preload sends its keys as one bound array (`= ANY($1)`), so one statement
/// serves every number of keys and gets a generic plan.
impl<T> PreloadKey<Postgres> for T
where
    T: SqlValue<Postgres> + sqlx::postgres::PgHasArrayType + Clone + Eq + std::hash::Hash,
    Vec<T>: SqlValue<Postgres>,
{
    fn any_of<M: Model<Backend = Postgres>>(column: Column<M, Self>, keys: &[Self]) -> Filter<M> {
        Filter::leaf(column.name(), Op::AnyOf, vec![Box::new(keys.to_vec())])
    }
}

/// What a statement's caller wants back behind PgBouncer.
enum Want<'w> {
    Optional,
    Each(Each<'w, Postgres>),
    Affected,
}

/// What a statement returned, as asked for with the matching [`Want`].
enum Fetched {
    Optional(Option<PgRow>),
    Count(u64),
}

impl Fetched {
    fn optional(self) -> Option<PgRow> {
        match self {
            Fetched::Optional(row) => row,
            Fetched::Count(_) => None,
        }
    }

    fn count(self) -> u64 {
        match self {
            Fetched::Count(n) => n,
            Fetched::Optional(row) => u64::from(row.is_some()),
        }
    }
}

/// Sends `$statement` on `$session`'s connection as a cached prepared statement, awaiting
/// `$run` (a use of the bound query `$query` on the connection `$conn`); re-prepared once if a
/// migration changed its result type. Written in place (not a function taking a closure) so
/// that the hot path is one future, not three nested ones. A stale plan is refused when the
/// statement is bound, before any row is sent, so a `fetch_each` has handed nothing over when
/// it is retried.
macro_rules! prepared {
    ($session:expr, $statement:expr, |$query:ident, $conn:ident| $run:expr) => {{
        let $conn = $session.conn();
        let first = {
            let $query = sqlx::query_with($statement.sql_str(), $statement.arguments()?);
            $run.await
        };
        match first {
            Err(err) if is_stale_plan(&err) => {
                $conn.clear_cached_statements().await?;
                if $conn.is_in_transaction() {
                    return Err(err);
                }
                let $query = sqlx::query_with($statement.sql_str(), $statement.arguments()?);
                $run.await
            }
            other => other,
        }
    }};
}

/// The setting that tells row-level security policies the tenant of a statement's rows.
pub(crate) const TENANT_SETTING: &str = "tenancy.tenant";

/// The setting a rename of a row-level tenant says besides [`TENANT_SETTING`]: the new name,
/// which the policies' `WITH CHECK` accepts as well, so the rename's `UPDATE` may give the rows
/// their new key. Said by nothing else.
pub(crate) const RENAMED_TO_SETTING: &str = "tenancy.renamed_to";

/// The row-level tenant a statement must tell the server's row-level security policies, if the
/// session says them and the statement reads or writes one's rows; refused if it names several
/// (one setting cannot say two tenants).
fn told<'a>(
    mode: PgMode,
    statement: &'a Statement<'_, Postgres>,
) -> Result<Option<(&'static str, &'a Tenant)>, sqlx::Error> {
    let Some(enter) = mode.row_security else {
        return Ok(None);
    };
    match statement.rows_of() {
        RowsOf::Nobody => Ok(None),
        RowsOf::One(tenant) => Ok(Some((enter, tenant))),
        RowsOf::Several => Err(sqlx::Error::Encode(Box::new(Refusal {
            table: "",
            reason: "one statement over several row-level tenants cannot run under row-level security (its policies see one tenant per transaction); query them one at a time",
        }))),
    }
}

/// Says row-level `tenant` to the row-level security policies for the rest of the
/// transaction, by `enter` ([`PgMode::row_security`]): refused with the registry's
/// `NOT_PLACED` unless the tenant is placed in its container, whose registry row it then holds
/// (`KEY SHARE`) until the transaction ends, so no promote moves it meanwhile.
pub(super) async fn tell(
    conn: &mut PgConnection,
    (enter, tenant): (&'static str, &Tenant),
    persistent: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(enter))
        .persistent(persistent)
        .bind(tenant.as_str())
        .bind(tenant.container())
        .execute(conn)
        .await?;
    Ok(())
}

/// Sends `statement` in a transaction (the caller's, or one of its own), after telling the
/// row-level security policies `told` if given; unnamed behind PgBouncer.
async fn in_transaction(
    session: &mut Session<'_, Postgres>,
    statement: &Statement<'_, Postgres>,
    want: Want<'_>,
    told: Option<(&'static str, &Tenant)>,
) -> Result<Fetched, sqlx::Error> {
    let persistent = !session.mode.pgbouncer;
    let conn = session.conn();
    if conn.is_in_transaction() {
        if let Some(tenant) = told {
            tell(conn, tenant, persistent).await?;
        }
        return once(conn, statement, want, persistent).await;
    }
    let mut tx = conn.begin().await?;
    let sent = async {
        if let Some(tenant) = told {
            tell(&mut tx, tenant, persistent).await?;
        }
        once(&mut tx, statement, want, persistent).await
    }
    .await;
    match sent {
        Ok(fetched) => {
            tx.commit().await?;
            Ok(fetched)
        }
        Err(err) => {
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}

async fn once(
    conn: &mut PgConnection,
    statement: &Statement<'_, Postgres>,
    want: Want<'_>,
    persistent: bool,
) -> Result<Fetched, sqlx::Error> {
    let query =
        sqlx::query_with(statement.sql_str(), statement.arguments()?).persistent(persistent);
    Ok(match want {
        Want::Optional => Fetched::Optional(query.fetch_optional(conn).await?),
        Want::Each(each) => {
            Fetched::Count(crate::backend::each_row(query.fetch(conn), each).await?)
        }
        Want::Affected => Fetched::Count(query.execute(conn).await?.rows_affected()),
    })
}

impl Backend for Postgres {
    type Dialect = PgDialect;
    type Mode = PgMode;
    const DB_SYSTEM: &'static str = "postgresql";
    const CONTAINER: &'static str = "schema";
    const MAX_BIND_PARAMS: usize = 65_535;
    type Store = PgStore;

    fn mode_of(store: &PgStore) -> PgMode {
        store.mode()
    }

    async fn fetch_optional<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        let told = told(session.mode, statement)?;
        if session.mode.pgbouncer || told.is_some() {
            return Ok(in_transaction(session, statement, Want::Optional, told).await?.optional());
        }
        prepared!(session, statement, |query, conn| query.fetch_optional(&mut *conn))
    }

    async fn fetch_each<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
        each: Each<'s, Self>,
    ) -> Result<u64, sqlx::Error> {
        let told = told(session.mode, statement)?;
        if session.mode.pgbouncer || told.is_some() {
            return Ok(in_transaction(session, statement, Want::Each(each), told).await?.count());
        }
        prepared!(session, statement, |query, conn| {
            crate::backend::each_row(query.fetch(&mut *conn), &mut *each)
        })
    }

    async fn execute<'s>(
        session: &'s mut Session<'_, Self>,
        statement: &'s Statement<'_, Self>,
    ) -> Result<u64, sqlx::Error> {
        let told = told(session.mode, statement)?;
        if session.mode.pgbouncer || told.is_some() {
            return Ok(in_transaction(session, statement, Want::Affected, told).await?.count());
        }
        prepared!(session, statement, |query, conn| async {
            Ok(query.execute(&mut *conn).await?.rows_affected())
        })
    }

    /// Behind PgBouncer, an unnamed statement inside a transaction (the caller's, or one
    /// opened for the stream and committed at its end). A stale cached plan is not retried
    /// here: the error ends the stream (rows may already have been yielded); run it again.
    fn stream<'s>(
        session: &'s mut Session<'_, Self>,
        sql: &'s str,
        args: PgArguments,
        rows_of: Option<&'s Tenant>,
    ) -> BoxStream<'s, Result<PgRow, sqlx::Error>> {
        let pgbouncer = session.mode.pgbouncer;
        let told = session.mode.row_security.zip(rows_of);
        let conn = session.conn();
        if told.is_none() && (!pgbouncer || conn.is_in_transaction()) {
            return sqlx::query_with(AssertSqlSafe(sql), args)
                .persistent(!pgbouncer)
                .fetch(conn);
        }
        Box::pin(async_stream::try_stream! {
            let mut tx = conn.begin().await?;
            if let Some(tenant) = told {
                tell(&mut tx, tenant, !pgbouncer).await?;
            }
            {
                let mut rows = sqlx::query_with(AssertSqlSafe(sql), args)
                    .persistent(!pgbouncer)
                    .fetch(&mut *tx);
                while let Some(row) = futures_util::StreamExt::next(&mut rows).await {
                    yield row?;
                }
            }
            tx.commit().await?;
        })
    }

    errors_module_hooks!();
}

