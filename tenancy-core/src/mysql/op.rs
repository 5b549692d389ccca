//! One MySQL lifecycle operation's connection ([`Op`]), the lock names it takes and the
//! quoting of the names it writes.

use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::{AssertSqlSafe, Connection};

use crate::error::{Error, LockHolder};
use crate::tenant::Tenant;

/// The longest `GET_LOCK` name MySQL accepts.
const MAX_LOCK_NAME: usize = 64;

/// `name` as a MySQL identifier: in backticks, a backtick inside doubled.
pub(crate) fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    crate::ident::quote_into(&mut out, name, '`');
    out
}

/// `db`.`table`.
pub(crate) fn qualified(db: &str, table: &str) -> String {
    format!("{}.{}", quote(db), quote(table))
}

/// The `GET_LOCK` name of `tenant` under `registry` (or of the registry itself): readable when
/// it fits in 64 characters, else a stable 128-bit FNV-1a hash of it (stable across builds, so
/// every process computes the same name; a collision only serializes two tenants' operations).
pub(crate) fn lock_name(registry: &Tenant, tenant: Option<&Tenant>) -> String {
    bounded(
        "tenancy",
        match tenant {
            Some(t) => format!("tenancy:{registry}:{t}"),
            None => format!("tenancy:{registry}"),
        },
    )
}

/// The `GET_LOCK` name of `tenant`'s fleet lock under `registry`: another name than its
/// lifecycle lock's ([`lock_name`]), which the home's own operations take meanwhile.
pub(crate) fn fleet_lock_name(registry: &Tenant, tenant: &Tenant) -> String {
    bounded("tenancy-fleet", format!("tenancy-fleet:{registry}:{tenant}"))
}

/// `full` if it fits in a lock name, else `prefix` and a stable 128-bit FNV-1a hash of it.
fn bounded(prefix: &str, full: String) -> String {
    if full.len() <= MAX_LOCK_NAME {
        return full;
    }
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in full.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    format!("{prefix}:{hash:032x}")
}

/// The seconds of `d` for a server timeout variable that takes whole seconds (at least 1).
fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// One lifecycle operation's connection: a dedicated connection (never from the pool's idle
/// set, never returned to it) that holds the operation's `GET_LOCK` locks and runs everything.
///
/// Why dedicated rather than `pool.acquire()` + `USE` + `detach()`: the connection carries
/// session state the pool must never see again: the `GET_LOCK` locks, `USE <tenant>`, the lock
/// timeouts, and whatever session variables a migration sets. If the operation's future is
/// dropped half-way (cancelled), a pooled connection would go back to the pool still holding
/// the tenant's lock and default database; a dedicated connection is simply dropped, its socket
/// closes, and the server releases its locks. It costs one connect per lifecycle operation,
/// which is small next to the DDL these run. (The pool's `after_connect` hook, if any, does not
/// run on it.) Registry statements are always database-qualified, so `USE` only serves the
/// migrations' unqualified names.
pub(crate) struct Op {
    pub(crate) conn: MySqlConnection,
    /// Lock names taken, in order (a name may appear twice: `GET_LOCK` is re-entrant).
    held: Vec<String>,
}

impl Op {
    pub(crate) async fn open(pool: &MySqlPool, lock_timeout: Duration) -> Result<Op, Error> {
        let options = pool.connect_options();
        let mut conn = MySqlConnection::connect_with(&options).await?;
        let secs = whole_seconds(lock_timeout);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET SESSION lock_wait_timeout = {secs}, SESSION innodb_lock_wait_timeout = {secs}"
        )))
        .execute(&mut conn)
        .await?;
        Ok(Op {
            conn,
            held: Vec::new(),
        })
    }

    /// Takes the lock `name` for `tenant`, waiting at most `timeout`.
    pub(crate) async fn lock(
        &mut self,
        name: String,
        tenant: &Tenant,
        timeout: Duration,
    ) -> Result<(), Error> {
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&name)
            .bind(timeout.as_secs_f64())
            .fetch_one(&mut self.conn)
            .await?;
        match got {
            Some(1) => {
                self.held.push(name);
                Ok(())
            }
            Some(_) => Err(Error::LockTimeout {
                tenant: tenant.clone(),
                waited: timeout,
                holders: self.holders(&name).await,
            }),
            None => Err(sqlx::Error::Protocol(format!("GET_LOCK({name:?}) returned NULL")).into()),
        }
    }

    /// Takes the lock `name` if it is free; whether it did.
    pub(crate) async fn try_lock(&mut self, name: String) -> Result<bool, Error> {
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
            .bind(&name)
            .fetch_one(&mut self.conn)
            .await?;
        let got = got == Some(1);
        if got {
            self.held.push(name);
        }
        Ok(got)
    }

    /// The session holding lock `name`, if it still does (best effort: empty on any error).
    pub(crate) async fn holders(&mut self, name: &str) -> Vec<LockHolder> {
        let found: Result<Vec<(i64, String, String)>, _> = sqlx::query_as(
            "SELECT CAST(ID AS SIGNED), COALESCE(NULLIF(STATE, ''), COMMAND), \
             LEFT(COALESCE(INFO, ''), 200) \
             FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)",
        )
        .bind(name)
        .fetch_all(&mut self.conn)
        .await;
        found
            .unwrap_or_default()
            .into_iter()
            .map(|(id, state, query)| LockHolder {
                pid: i32::try_from(id).unwrap_or(i32::MAX),
                application_name: String::new(),
                state,
                query,
            })
            .collect()
    }

    /// Releases the last lock taken of `name`.
    pub(crate) async fn unlock(&mut self, name: &str) -> Result<(), Error> {
        if let Some(at) = self.held.iter().rposition(|n| n == name) {
            self.held.remove(at);
            sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(name)
                .execute(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    /// Releases every lock on this connection, then closes it. Errors are ignored: a closed
    /// connection's locks are released by the server anyway.
    pub(crate) async fn finish(mut self) {
        while let Some(name) = self.held.pop() {
            if sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(&name)
                .execute(&mut self.conn)
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = self.conn.close().await;
    }

    /// Runs one statement without arguments.
    pub(crate) async fn run(&mut self, sql: String) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lock_names_are_hashed_stably() {
        let registry = Tenant::new("_tenancy").unwrap();
        let short = Tenant::new("acme").unwrap();
        assert_eq!(lock_name(&registry, Some(&short)), "tenancy:_tenancy:acme");
        let long = Tenant::new("a".repeat(63)).unwrap();
        let name = lock_name(&registry, Some(&long));
        assert!(name.len() <= MAX_LOCK_NAME, "{name}");
        assert_eq!(name, lock_name(&registry, Some(&long)));
        assert_ne!(
            name,
            lock_name(&registry, Some(&Tenant::new("b".repeat(63)).unwrap()))
        );
        assert_eq!(quote("a`b"), "`a``b`");
    }
}
