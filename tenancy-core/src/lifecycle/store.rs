//! [`Store`]: the primitives each backend gives the one lifecycle algorithm
//! ([`operations`](super::operations)), the way sqlx's `Migrate` gives `Migrator::run` its
//! lock, history and apply. A store keeps what its backend's lifecycle needs beyond the pool
//! (a registry, lock settings, open tenant pools) and knows how to take a tenant's lock, look
//! at it, change its container and record its migrations; the order of those steps, the
//! checks between them, events, spans and name rules are the algorithm's, written once.

use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use sqlx::migrate::Migration;
use sqlx::{Database, Pool};

use super::archive::{Lines, Shape, TextRows, Value};
use super::plan::{History, Migrations};
use super::report::{RelocatePhase, RelocateProgress, RelocateProgressFn};
use crate::error::Error;
use crate::statement::Dialect;
use crate::tenant::{NameRule, Tenant};

/// A hook run inside the operation that creates a tenant, after its migrations (e.g. to seed
/// data), on the connection that ran them: names in unqualified SQL resolve in the new tenant
/// (PostgreSQL: its schema first on the transaction's `search_path`, followed by the handle's
/// shared schemas; MySQL: its database is the connection's default; SQLite: its file). An error
/// undoes the whole creation.
pub type CreateHook<B = sqlx::Postgres> = Box<
    dyn for<'c> FnOnce(
            &'c mut <B as Database>::Connection,
            &'c Tenant,
        ) -> BoxFuture<'c, Result<(), sqlx::error::BoxDynError>>
        + Send,
>;

/// Every tenant in name order, each with its history if a run has work for it.
pub(crate) type Behind = Vec<(Tenant, Option<History>)>;

/// What a lifecycle operation is about to do, so its store can open the connection it needs
/// (PostgreSQL saves and restores session settings only around user SQL: migrations and
/// hooks).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Create a tenant, migrate it, maybe run a hook.
    Create,
    /// Drop a tenant.
    Drop,
    /// Rename a tenant.
    Rename,
    /// Apply or revert migrations of a tenant.
    Migrate,
    /// Create a tenant as a copy of another, migrating it where the copy needs that.
    Clone,
    /// Read a tenant whole, from one consistent view, into an archive.
    Export,
    /// Create a tenant, migrate it and fill it from an archive.
    Import,
    /// Register a row-level tenant in its container: registry rows only, no SQL of the
    /// application's.
    Place,
    /// Give a row-level tenant a container of its own: make and migrate it, move its rows in.
    Promote,
    /// Move a tenant's rows into another tenant's container and drop its own.
    Demote,
    /// Change a fleet's map of tenants to databases, under the tenants' fleet locks (in the
    /// home's registry).
    Fleet,
    /// Read a tenant whole with its writes held back, to copy it to another database, and
    /// drop it once the copy is checked.
    Move,
}

/// Which way migrations run.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Up migrations, each recorded as applied.
    Up,
    /// Down migrations, each one's record removed.
    Down,
}

/// What an operation found of a tenant, under its lock.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The registry holds it.
    pub registered: bool,
    /// Its container (schema, database, file) exists.
    pub container: bool,
}

/// What a [`Store`] is opened with.
#[doc(hidden)]
#[derive(Debug)]
pub struct Opening<'a, B: Database, S> {
    /// The pool the handle is built on.
    pub pool: Pool<B>,
    /// The registry's name.
    pub registry: &'a Tenant,
    /// How long an operation waits for a tenant's lock at most (`None`: as long as the server
    /// allows).
    pub lock_timeout: Option<Duration>,
    /// The backend's own settings.
    pub settings: &'a S,
}

/// What a backend's tenant lifecycle provides. Every method is one step of an operation and
/// leaves nothing half-done on its own: an operation's writes are undone by
/// [`finish`](Self::finish) when it ends in an error (a rollback, or on MySQL, whose DDL
/// commits at once, a compensation). Public only because it bounds public items; it lives in a
/// private module, so nothing outside can name it.
#[doc(hidden)]
pub trait Store<B: Database>: Send + Sync + Sized + 'static {
    /// What a handle is configured with beyond the registry and the lock timeout (PostgreSQL:
    /// shared schemas, PgBouncer, flavour; SQLite: its `PoolBudget`).
    type Settings: Clone + Default + Send + Sync + 'static;

    /// One operation's connection and what it holds (locks, a transaction, a file being
    /// built). Dropped without [`finish`](Self::finish) (the operation's future was
    /// dropped), it must leave nothing behind: its connection is closed, not pooled.
    type Op: Send;

    /// The store of a handle, opened `with` its pool, registry, lock timeout and settings.
    fn open(with: Opening<'_, B, Self::Settings>) -> Result<Self, Error>;

    /// The pool the handle was built on.
    fn pool(&self) -> &Pool<B>;

    /// Why `tenant` cannot be a tenant on this backend beyond the naming rule (the server's own
    /// databases, names a file system reserves), if it cannot.
    fn refuses(&self, tenant: &Tenant) -> Option<NameRule> {
        let _ = tenant;
        None
    }

    /// Whether `tenant` is registered.
    fn exists(&self, tenant: &Tenant) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Every registered tenant, by name.
    fn list(&self) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send;

    /// Every registered tenant with its migration history, by name.
    fn histories(&self) -> impl Future<Output = Result<Vec<(Tenant, History)>, Error>> + Send;

    /// `tenant`'s migration history, `None` if it is not registered.
    fn history_of(
        &self,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Option<History>, Error>> + Send;

    /// The pool that serves `tenant`'s statements (PostgreSQL, MySQL: the handle's own; SQLite:
    /// the tenant's file's, from the handle's LRU).
    fn pool_for(&self, tenant: &Tenant) -> impl Future<Output = Result<Pool<B>, Error>> + Send;

    /// Opens an operation's connection, making sure the registry exists.
    fn begin(&self, operation: Operation) -> impl Future<Output = Result<Self::Op, Error>> + Send;

    /// Takes `tenant`'s lock for the rest of the operation, waiting at most the lock timeout
    /// ([`Error::LockTimeout`]).
    fn lock(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Takes the locks of `tenants`, in the order given, for the rest of the operation:
    /// [`lock`](Self::lock) of each in turn, unless the backend takes them together (PostgreSQL,
    /// when the operation's snapshot is to be taken once it holds all of them).
    fn lock_each(
        &self,
        op: &mut Self::Op,
        tenants: &[&Tenant],
    ) -> impl Future<Output = Result<(), Error>> + Send {
        async move {
            for tenant in tenants {
                self.lock(op, tenant).await?;
            }
            Ok(())
        }
    }

    /// Whether `tenant` is registered and whether its container exists (under its lock).
    fn inspect(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Found, Error>> + Send;

    /// `tenant`'s migration history (under its lock; on SQLite also under its file's write
    /// lock).
    fn history(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<History, Error>> + Send;

    /// Registers `tenant` and makes its container; [`Error::TenantExists`] or
    /// [`Error::ContainerExists`] if another creation got there first.
    fn make(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Points the operation's unqualified names at `tenant` (whose container exists) for the
    /// migrations and hooks that follow.
    fn enter(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Runs migration `m` in `tenant` and records it (applied, or reverted); [`Error::Migration`]
    /// if it fails.
    fn apply_one(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
        m: &Migration,
        direction: Direction,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Runs `migrations` in `tenant`, in order, and records them (applied, or reverted);
    /// [`Error::Migration`] names the one that failed. One by one with
    /// [`apply_one`](Self::apply_one) unless the store runs them at once.
    fn apply(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
        migrations: &[&Migration],
        direction: Direction,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        async move {
            for m in migrations {
                self.apply_one(op, tenant, m, direction).await?;
            }
            Ok(())
        }
    }

    /// Runs a create hook on the operation's connection.
    fn hook(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
        hook: CreateHook<B>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Drops `tenant`'s container if `found` says it exists, and unregisters it.
    fn remove(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
        found: Found,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Renames `old` (registered, its container there) to `new` (free), data and history
    /// included.
    fn rename(
        &self,
        op: &mut Self::Op,
        old: &Tenant,
        new: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Makes `to` (free) a copy of `from` (registered, its container there, every migration
    /// applied) in one step, container, rows and migration history, if this backend copies
    /// whole containers (SQLite: the file), from one consistent view of `from`: `Ok(false)`
    /// when it did nothing, and the operation then makes `to`, migrates it and calls
    /// [`copy_rows`](Self::copy_rows).
    fn copy_whole(
        &self,
        op: &mut Self::Op,
        from: &Tenant,
        to: &Tenant,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let _ = (op, from, to);
        async { Ok(false) }
    }

    /// Copies the rows of every table of `from` into the table of the same name in `to` (made
    /// and migrated in this operation as `from` was), replacing what the migrations put
    /// there, from one consistent view of `from` (its writes wait or are not seen), without
    /// firing `to`'s triggers; `to`'s generated keys (sequences, `AUTO_INCREMENT`) continue
    /// after the copied ones.
    fn copy_rows(
        &self,
        op: &mut Self::Op,
        from: &Tenant,
        to: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Ends the operation: makes its work durable if `result` is `Ok`, undoes it otherwise,
    /// releases its locks and its connection. Returns `result`, or the error of making it
    /// durable.
    fn finish<T: Send>(
        &self,
        op: Self::Op,
        result: Result<T, Error>,
    ) -> impl Future<Output = Result<T, Error>> + Send;

    /// The error of an operation on `tenant`, made specific: a lock timeout naming who holds
    /// a lock on the tenant, a database error naming the tenant.
    fn explain(&self, tenant: &Tenant, err: Error) -> impl Future<Output = Error> + Send;

    /// Creates `tenant` with every up migration in one round trip, if this backend can:
    /// `Ok(false)` when it did nothing (then the operation runs a step at a time, which also
    /// names the exact error of a failure).
    fn create_at_once(
        &self,
        tenant: &Tenant,
        migrations: &Migrations,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let _ = (tenant, migrations);
        async { Ok(false) }
    }

    /// `tenant`'s history read without its lock, where that lets [`migrate_at_once`] skip the
    /// locked steps: `None` to always take them.
    ///
    /// [`migrate_at_once`]: Self::migrate_at_once
    fn history_unlocked(
        &self,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Option<History>, Error>> + Send {
        let _ = tenant;
        async { Ok(None) }
    }

    /// Applies `pending` to `tenant` in one round trip, under its lock, if the tenant is still
    /// as `read` (its history read without the lock): `Ok(false)` when it did nothing.
    fn migrate_at_once(
        &self,
        tenant: &Tenant,
        read: &History,
        pending: &[&Migration],
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let _ = (tenant, read, pending);
        async { Ok(false) }
    }

    /// Which tenants `migrate_all` has work for, in name order, each with its history when it
    /// has work: `None` to read [`histories`](Self::histories) and decide from them.
    fn behind(
        &self,
        migrations: &Migrations,
    ) -> impl Future<Output = Result<Option<Behind>, Error>> + Send {
        let _ = migrations;
        async { Ok(None) }
    }

    /// Whether reading a tenant's history costs as much as migrating it (SQLite: a file to
    /// open): runs then go to every tenant without reading the histories first.
    fn reads_every_tenant(&self) -> bool {
        false
    }

    /// What a run that will change tenants notes before the first of them (PostgreSQL: when
    /// the server started).
    fn run_started(&self) -> impl Future<Output = Result<String, Error>> + Send {
        async { Ok(String::new()) }
    }

    /// After a run changed `changed` tenants: makes their migrations durable, or fails with
    /// [`Error::ServerRestarted`] if they may have been lost since `started`.
    fn run_finished(
        &self,
        started: &str,
        changed: usize,
        operation: &'static str,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (started, changed, operation);
        async { Ok(()) }
    }

    /// How many tenants a run migrates at once unless told otherwise.
    fn default_concurrency(&self) -> usize {
        self.pool().options().get_max_connections() as usize
    }
}

/// A table of a tenant that an export reads.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// The table.
    pub table: &'a Shape,
}

/// A table of a tenant that an import writes rows into, and the table's columns (by index)
/// that each row holds the values of, in order.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// The table.
    pub table: &'a Shape,
    /// The columns the rows' values are for.
    pub columns: &'a [usize],
}

/// Rows an import writes at once into its target, each row's values canonical for their
/// kinds.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Where the rows go.
    pub into: Target<'a>,
    /// The rows.
    pub rows: &'a [Vec<Value>],
}

/// What a backend's store gives [`export`](super::Tenants::export) and
/// [`import`](super::Tenants::import): a tenant's tables and rows read from one consistent
/// view, and rows written into a tenant that the import made and migrated, inside the
/// operation (whose [`finish`](Store::finish) undoes them on a failure). Written in each
/// backend's `port` module.
#[doc(hidden)]
pub trait Port<B: Database>: Store<B> {
    /// Starts reading `tenant` (locked, its history read) for an export, from one consistent
    /// view of it (its writes wait or are not seen) until the operation ends, and returns its
    /// tables (generated columns left out), referenced tables first.
    fn export_begin(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Vec<Shape>, Error>> + Send;

    /// The rows of table `from` as the archive's row lines, a chunk of whole lines at a time:
    /// each value [`canonical`](super::archive::canonical) for its column's kind, in the
    /// columns' order.
    fn read_lines<'a>(&'a self, op: &'a mut Self::Op, from: Source<'a>) -> Lines<'a>;

    /// Readies `tenant` (made and migrated in this operation) to be filled by an import: its
    /// tables emptied of what the migrations wrote, and its triggers off (or the import
    /// refused with [`Error::Unsupported`] where they cannot be turned off). Returns its
    /// tables as [`export_begin`](Self::export_begin) does.
    fn import_begin(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Vec<Shape>, Error>> + Send;

    /// How many rows [`write_rows`](Self::write_rows) takes at once, if not as many as fit in
    /// one statement's bound values (at most 1,000).
    fn rows_per_write(&self) -> Option<usize> {
        None
    }

    /// Writes `batch`'s rows into its target.
    fn write_rows(
        &self,
        op: &mut Self::Op,
        batch: Batch<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Writes every batch of rows `batches` yields into `into` (as
    /// [`write_rows`](Self::write_rows) does, a batch at a time, unless the store streams
    /// them: PostgreSQL's one `COPY` per table, fed while the archive is read).
    fn write_table<'a>(
        &'a self,
        op: &'a mut Self::Op,
        into: Target<'a>,
        mut batches: BoxStream<'a, Result<Vec<Vec<Value>>, Error>>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a {
        async move {
            while let Some(batch) = batches.try_next().await? {
                let rows = &batch;
                self.write_rows(op, Batch { into, rows }).await?;
            }
            Ok(())
        }
    }

    /// How the store takes rows as text, if it does ([`write_text`](Self::write_text)): an
    /// import then turns the archive's row lines straight into that text.
    fn text_rows(&self) -> Option<TextRows> {
        None
    }

    /// Writes every chunk of text rows (whole rows, as [`text_rows`](Self::text_rows) says)
    /// `chunks` yields into `into`, streaming them; only called if `text_rows` is some.
    fn write_text<'a>(
        &'a self,
        _op: &'a mut Self::Op,
        _into: Target<'a>,
        _chunks: BoxStream<'a, Result<String, Error>>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a {
        async {
            Err(Error::Unsupported {
                operation: "import",
                reason: "this store takes no rows as text".to_owned(),
            })
        }
    }

    /// Ends an import's writes into `tenant`: triggers back on, generated keys (sequences)
    /// continuing after the imported ones.
    fn import_end(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Which row-level tenants a registry read returns.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    /// Every one.
    All,
    /// The one of this name.
    Named(&'a Tenant),
    /// Those whose rows are in this container.
    In(&'a Tenant),
    /// The one of this name if its drop started and has not finished (its registry row's
    /// `dropping` set).
    Dropping(&'a Tenant),
}

impl Which<'_> {
    /// The `WHERE` clause choosing them (`?` standing for [`value`](Self::value)), or nothing.
    pub fn filter(&self) -> &'static str {
        match self {
            Which::All => "",
            Which::Named(_) => " WHERE name = ?",
            Which::In(_) => " WHERE container = ?",
            Which::Dropping(_) => " WHERE name = ? AND dropping",
        }
    }

    /// The value the filter binds.
    pub fn value(&self) -> Option<&str> {
        match self {
            Which::All => None,
            Which::Named(t) | Which::In(t) | Which::Dropping(t) => Some(t.as_str()),
        }
    }
}

/// What [`Place::rewrite_rows`] does to row-level `tenant`'s rows in the tables of its
/// container that have a column named `column`: deletes them, or with `to`, gives them `to`'s
/// name in that column.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'a> {
    /// The tenant whose rows these are (as registered).
    pub tenant: &'a Tenant,
    /// The tenant column.
    pub column: &'a str,
    /// The tenant to give them to, if any.
    pub to: Option<&'a Tenant>,
}

impl<'a> Rewrite<'a> {
    /// The statement to send to `table` (quoted) in dialect `D`, and the names it binds, in
    /// order: `DELETE FROM <table> WHERE <column> = <tenant>`, or with `to`, `UPDATE <table>
    /// SET <column> = <to> WHERE <column> = <tenant>` (`column` quoted). Each placeholder is
    /// written as its name is added, numbered by it.
    pub(crate) fn statement<D: Dialect>(
        &self,
        table: &str,
        column: &str,
    ) -> (String, Vec<&'a str>) {
        let mut names = Vec::with_capacity(2);
        let mut sql = match self.to {
            Some(to) => {
                let mut sql = format!("UPDATE {table} SET {column} = ");
                names.push(to.as_str());
                D::placeholder(&mut sql, names.len());
                sql.push_str(" WHERE ");
                sql
            }
            None => format!("DELETE FROM {table} WHERE "),
        };
        sql.push_str(column);
        sql.push_str(" = ");
        names.push(self.tenant.as_str());
        D::placeholder(&mut sql, names.len());
        (sql, names)
    }
}

/// What a backend's store gives the lifecycle of row-level tenants
/// ([`Tenant::rows_in`](crate::Tenant::rows_in)): their registry (each one's name and the
/// container its rows are in, beside the registry of containers) and the deletion of one
/// tenant's rows from its container. Written in each backend's `place` module.
#[doc(hidden)]
pub trait Place<B: Database>: Store<B> {
    /// The registered row-level tenants `which` chooses, in name order, each placed in its
    /// container: read on the operation's connection if one is given (under its locks; it may
    /// hold the pool's only connection), else on the pool.
    fn registered(
        &self,
        op: Option<&mut Self::Op>,
        which: Which<'_>,
    ) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send;

    /// The row-level tenant `name` as registered, if it is one.
    fn placement(
        &self,
        name: &Tenant,
    ) -> impl Future<Output = Result<Option<Tenant>, Error>> + Send {
        async move { Ok(self.registered(None, Which::Named(name)).await?.pop()) }
    }

    /// [`placement`](Self::placement) read in operation `op`.
    fn placement_in(
        &self,
        op: &mut Self::Op,
        name: &Tenant,
    ) -> impl Future<Output = Result<Option<Tenant>, Error>> + Send {
        async move { Ok(self.registered(Some(op), Which::Named(name)).await?.pop()) }
    }

    /// Whether row-level tenant `name`'s drop started and has not finished, read in operation
    /// `op` if one is given, else on the pool.
    fn being_dropped(
        &self,
        op: Option<&mut Self::Op>,
        name: &Tenant,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        async move { Ok(!self.registered(op, Which::Dropping(name)).await?.is_empty()) }
    }

    /// Every registered row-level tenant, in name order.
    fn placements(&self) -> impl Future<Output = Result<Vec<Tenant>, Error>> + Send {
        self.registered(None, Which::All)
    }

    /// How many row-level tenants have their rows in `container`, read in operation `op`.
    fn placed_in(
        &self,
        op: &mut Self::Op,
        container: &Tenant,
    ) -> impl Future<Output = Result<usize, Error>> + Send {
        async move { Ok(self.registered(Some(op), Which::In(container)).await?.len()) }
    }

    /// Registers row-level `tenant` in its container (locked; its container registered, under
    /// its lock) if `placed`, [`Error::TenantExists`] if a row-level tenant of its name is;
    /// else unregisters it (locked).
    fn set_placed(
        &self,
        op: &mut Self::Op,
        tenant: &Tenant,
        placed: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Registers row-level `tenant` in its container in one round trip, if this store can:
    /// under the locks of its name and then its container (as
    /// [`create_in`](crate::Tenants::create_in) takes them), it reads whether the name is
    /// taken and what the container is, and registers the tenant if the name is free and the
    /// container a tenant with its container ([`Placing::placed`]), durably. `Ok(None)` when
    /// it did nothing (then the operation runs a step at a time).
    fn place_at_once(
        &self,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Option<Placing>, Error>> + Send {
        let _ = tenant;
        async { Ok(None) }
    }

    /// Registers the row-level tenants `tenants` (of one container, in byte order of their
    /// names, no name twice) in one round trip, if this store can: under every name's lock and
    /// then the container's, it reads the first name taken and what the container is, and
    /// registers them all if no name is taken and the container is a tenant with its
    /// container, durably in one commit, else none. `Ok(None)` when it did nothing (then the
    /// operation runs a step at a time).
    fn place_many_at_once(
        &self,
        tenants: &[Tenant],
    ) -> impl Future<Output = Result<Option<PlacingMany>, Error>> + Send {
        let _ = tenants;
        async { Ok(None) }
    }

    /// Deletes row-level `rows.tenant`'s rows (locked) from every table of its container that
    /// has a column named `rows.column`, or with `rows.to`, gives them that tenant's name in
    /// that column ([`Rewrite`]); each table's in one statement. The number of rows deleted or
    /// changed. The tenant's writes in flight end first and are rewritten with the rest (a
    /// delete or update does not see a row inserted and not yet committed).
    fn rewrite_rows(
        &self,
        op: &mut Self::Op,
        rows: Rewrite<'_>,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Starts the drop of row-level `rows.tenant` (locked, registered; `rows.to` is `None`):
    /// its writes in flight end first (as for [`rewrite_rows`](Self::rewrite_rows)), its next
    /// ones are refused by the placement guard on its container's tables, and its
    /// registry row is marked `dropping`, durably with the operation. Again on a tenant marked
    /// already, the same (a drop resumed). Returns the tables of its container with the column
    /// `rows.column`, in the order their rows are to be deleted.
    fn mark_dropping(
        &self,
        op: &mut Self::Op,
        rows: Rewrite<'_>,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// Deletes at most `limit` rows of row-level `rows.tenant` (locked, marked `dropping`) from
    /// `table` of its container ([`mark_dropping`](Self::mark_dropping)'s), made durable with the
    /// operation or on its own: the rows deleted (0 once the table holds none of it).
    fn delete_batch(
        &self,
        op: &mut Self::Op,
        rows: Rewrite<'_>,
        table: &str,
        limit: usize,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Moves row-level tenant `rows.placed`'s rows (both names locked; [`Move`]) between its
    /// container and a container of its own, `rows.toward` it ([`Toward::Own`]: the tables of
    /// `rows.placed.own()`, made and migrated in this operation; the rows are deleted from the
    /// container) or back
    /// ([`Toward::Shared`]: into its container's tables, the tenant column set to its name),
    /// and switches its placement: unregistered as a row-level tenant after a move to its own
    /// container, registered in its container before a move back (whose own container the
    /// operation then removes). Every table with a column named `rows.column`, referenced tables
    /// first; the tenant's writes wait until the move is durable and, after it, an insert that
    /// still sends its rows to where they were fails ([`Error::NotPlaced`]). Generated keys
    /// continue after the moved ones. The number of rows moved, and how long copying them took.
    fn move_rows(
        &self,
        op: &mut Self::Op,
        rows: &Move<'_>,
    ) -> impl Future<Output = Result<Moved, Error>> + Send;
}

/// What [`Place::place_at_once`] found under the locks of a row-level tenant's name and its
/// container: it registered the tenant if [`placed`](Self::placed).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placing {
    /// The name is a tenant of either kind already.
    pub taken: bool,
    /// What the container is.
    pub container: Found,
}

impl Placing {
    /// Whether the tenant was registered: its name free, its container registered and there.
    pub fn placed(&self) -> bool {
        !self.taken && self.container.registered && self.container.container
    }
}

/// What [`Place::place_many_at_once`] found under the locks of the names and their container:
/// it registered them all if no name was [`taken`](Self::taken) and the container is a tenant
/// with its container.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacingMany {
    /// The first name (in byte order) that is a tenant of either kind already.
    pub taken: Option<String>,
    /// What the container is.
    pub container: Found,
}

/// What [`Place::move_rows`] did.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// The rows moved, over every table.
    pub rows: u64,
    /// How long the statements that copied them took together (the first pass and the
    /// catch-up; not the waits for locks between them, nor the deletes).
    pub copying: Duration,
}

impl Moved {
    /// The rows moved `per_table`, copied in `copying`.
    pub(crate) fn of(per_table: &[u64], copying: Duration) -> Self {
        Moved {
            rows: per_table.iter().sum(),
            copying,
        }
    }
}

/// Which way [`Place::move_rows`] moves a tenant's rows.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    /// From the container it shares into its own ([`Tenants::promote`](crate::Tenants::promote)).
    Own,
    /// From its own container into the one it will share
    /// ([`Tenants::demote`](crate::Tenants::demote)).
    Shared,
}

impl Toward {
    /// The operation that moves a tenant's rows this way: `"promote"` or `"demote"`.
    pub fn operation(self) -> &'static str {
        match self {
            Toward::Own => "promote",
            Toward::Shared => "demote",
        }
    }
}

/// A move of row-level `placed`'s rows `toward` a tier ([`Place::move_rows`]), by the tenant
/// column `column`: `from` the container they are in `to` the other, of `placed`'s container
/// and its own. The store reports its steps as it goes ([`tables`](Self::tables),
/// [`switching`](Self::switching)) to the caller's [`Watch`].
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Move<'a> {
    /// The tenant whose rows move (as registered: its container the shared one).
    pub placed: &'a Tenant,
    /// The tenant column.
    pub column: &'a str,
    /// Which way they move.
    pub toward: Toward,
    /// The container the rows are in.
    pub from: Tenant,
    /// The container they move to.
    pub to: Tenant,
    /// Who is told how the move goes.
    pub watch: Watch<'a>,
}

impl<'a> Move<'a> {
    /// The move of `placed`'s rows `toward` a tier by `column`, its steps told to `watch`.
    pub(crate) fn new(
        placed: &'a Tenant,
        column: &'a str,
        toward: Toward,
        watch: Watch<'a>,
    ) -> Self {
        let (shared, own) = (placed.container_tenant(), placed.own());
        let (from, to) = match toward {
            Toward::Own => (shared, own),
            Toward::Shared => (own, shared),
        };
        Move {
            placed,
            column,
            toward,
            from,
            to,
            watch,
        }
    }

    /// Tells the watch a step: `phase` of `table` (`rows` of it), `so_far` rows of the step
    /// over `done` of `total` tables.
    fn report(
        &self,
        phase: RelocatePhase,
        table: Option<&str>,
        rows: u64,
        so_far: u64,
        (done, total): (usize, usize),
    ) {
        if let Some(f) = self.watch.0 {
            let tenant = match self.toward {
                Toward::Own => &self.to,
                Toward::Shared => &self.from,
            };
            f(&RelocateProgress {
                operation: self.toward.operation(),
                tenant,
                from: &self.from,
                to: &self.to,
                phase,
                table,
                rows,
                rows_so_far: so_far,
                done,
                total,
            });
        }
    }

    /// Tells the watch that a promote starts making the tenant's own container.
    pub(crate) fn making(&self) {
        self.report(RelocatePhase::Making, None, 0, 0, (0, 0));
    }

    /// The tally of step `phase` over the `total` tables that move, each told to the watch
    /// as it is [`done`](Tally::done).
    pub fn tables(&self, phase: RelocatePhase, total: usize) -> Tally<'_, 'a> {
        Tally {
            of: self,
            phase,
            done: 0,
            total,
            so_far: 0,
        }
    }

    /// Tells the watch that every row of the `tables` that move has moved (`rows` of them)
    /// and the placement switches: what the store does last.
    pub fn switching(&self, tables: usize, rows: u64) {
        self.report(RelocatePhase::Switching, None, 0, rows, (tables, tables));
    }
}

/// The caller's progress callback of a move, if it has one
/// ([`RelocateOptions::on_progress`](super::report::RelocateOptions::on_progress)).
#[doc(hidden)]
#[derive(Clone, Copy, Default)]
pub struct Watch<'a>(pub(crate) Option<&'a RelocateProgressFn>);

impl std::fmt::Debug for Watch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Watch").field(&self.0.is_some()).finish()
    }
}

/// One step of a [`Move`] over its tables ([`Move::tables`]): each table told to the move's
/// watch as it is done, with the step's rows so far.
#[doc(hidden)]
#[derive(Debug)]
pub struct Tally<'m, 'a> {
    of: &'m Move<'a>,
    phase: RelocatePhase,
    done: usize,
    total: usize,
    so_far: u64,
}

impl Tally<'_, '_> {
    /// The step is done for `table`, with `rows` of it.
    pub fn done(&mut self, table: &str, rows: u64) {
        self.done += 1;
        self.so_far += rows;
        let at = (self.done, self.total);
        self.of
            .report(self.phase, Some(table), rows, self.so_far, at);
    }
}

/// Checks, for a dialect's tests, that [`Rewrite::statement`] writes `update` (a rename) and
/// `delete` for table `t`, column `c`, with the names bound in the order its placeholders take
/// them: the new name, then the old.
#[cfg(test)]
pub(crate) fn rewrites_as<D: Dialect>(update: &str, delete: &str) {
    let (old, new) = (
        Tenant::new("tenant_1").unwrap(),
        Tenant::new("tenant_2").unwrap(),
    );
    let rename = Rewrite {
        tenant: &old,
        column: "tenant_id",
        to: Some(&new),
    };
    let names = vec!["tenant_2", "tenant_1"];
    assert_eq!(rename.statement::<D>("t", "c"), (update.to_owned(), names));
    let drop = Rewrite { to: None, ..rename };
    assert_eq!(
        drop.statement::<D>("t", "c"),
        (delete.to_owned(), vec!["tenant_1"])
    );
}
