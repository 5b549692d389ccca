//! The backend harness: every backend-neutral behaviour is written once, in `shared/*.rs` (a
//! macro per concern), and compiled once per backend. Each backend module mounts them with one
//! line, `shared::mount!(all)` (`pg`, `citus`, `mysql`) or the concerns named (`sqlite`), which
//! expands each concern's tests in a module of that backend, so there `super::` is that
//! backend: the tests are named `backends::pg::crud::…` and `backends::mysql::crud::…`.
//!
//! What a backend module gives the shared files (the compiler checks it at every use):
//! - `Db` (sqlx's database type), `Pool`, `pool()`, `pool_with(n)`, `MAX_BIND_PARAMS`;
//! - `Guard` (from [`guard_model!`], derived for the backend) and `Badge` (an application key
//!   and a unique `holder`);
//! - `Fresh`: `n` fresh tenant containers holding `guards` and `badges`, made with plain DDL in
//!   the backend's dialect (bypassing the lifecycle) and dropped when the value is dropped;
//! - raw SQL that bypasses the library: `q(tenant)` (the container quoted), `exec`,
//!   `raw_guards`, `has_table`, `has_column`, `container_exists`, `container_names`,
//!   `create_container`, `drop_container`, `SERVER_CONTAINER` (one that always exists);
//! - `DB_SYSTEM`: the `db.system` its statements' spans carry;
//! - `Lifecycle`: a `Tenants<Db>` on a private registry, everything it made dropped at the end;
//!   migrations in the dialect: `v1()`, `v2()` (adds `guards.badge`, reversible), `V1_GUARDS`,
//!   `FAILING` (a statement the server refuses), `ADD_BADGE_INT` (breaks v2 in one tenant);
//! - `ATOMIC_DDL`, the one switch the shared bodies read (see below).
//!
//! Differences by design, each tested in its backend's own module only:
//! - PostgreSQL (`ATOMIC_DDL = true`): create, migrate and rollback are transactions, so a
//!   failing migration leaves the tenant exactly as it was and a rerun tries it again
//!   (`lifecycle.rs`, `migrations.rs`); `create_with` hooks in the create transaction; statement
//!   batches, aborted runs, overlapping runs, `rollback_all`, the `last_migrate_run` record and
//!   session restoring (`migrations.rs`); `insert_many` as one statement and the largest batch
//!   that fits (`crud.rs`); `search_path` and session state (`isolation.rs`); PgBouncer,
//!   hardening, `query_across`, task-local context, column types (their own modules).
//! - SQLite (`ATOMIC_DDL = true`, `backends/sqlite.rs`): a file per tenant in a temporary
//!   folder per test, so these run without a server. The harness's `Pool` is a
//!   `Tenants<Sqlite>`, which routes each statement to its tenant's file; raw SQL attaches the
//!   files it names. Tenant pools and their binding, the LRU budget, atomic create, a dropped
//!   tenant's held pool, rename of a file, concurrency: its own module.
//! - MySQL/MariaDB (`ATOMIC_DDL = false`, `backends/mysql.rs`): DDL commits implicitly, so
//!   create compensates (drops the database, unregisters) and a migration that failed part-way
//!   keeps what it did and its `success = FALSE` row: status shows it pending and migrate
//!   refuses it with `Error::Dirty` instead of re-running it; rename moves tables and refuses a
//!   database holding views (`Error::Unsupported`, nothing changed); the server's databases are
//!   reserved names; a session's `USE` does not redirect CRUD; unsigned keys. No run record,
//!   shared schemas or PgBouncer mode on MySQL (the backend's docs); `rollback_all` is shared
//!   (`shared/migrations.rs`).

pub mod citus;
pub mod mysql;
pub mod pg;
mod shared;
pub mod sqlite;

/// The `db.system` and `db.collection.name` of the spans a test thread opens.
///
/// One subscriber for the whole test binary, installed globally on first use, records for the
/// threads that asked. (A thread's own `set_default` subscriber missed spans now and then: the
/// same call sites are hit at once by other tests' threads, which have none.)
pub mod spans {
    use std::cell::RefCell;
    use std::sync::Once;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    type Fields = Vec<(String, String)>;

    thread_local! {
        static RECORDED: RefCell<Option<Fields>> = const { RefCell::new(None) };
    }

    struct Recorder;

    impl<S: tracing::Subscriber> Layer<S> for Recorder {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            #[derive(Default)]
            struct Fields(String, String);
            impl Visit for Fields {
                fn record_str(&mut self, field: &Field, value: &str) {
                    match field.name() {
                        "db.system" => self.0 = value.into(),
                        "db.collection.name" => self.1 = value.into(),
                        _ => {}
                    }
                }
                fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
            }
            RECORDED.with(|recorded| {
                if let Some(spans) = recorded.borrow_mut().as_mut() {
                    let mut fields = Fields::default();
                    attrs.record(&mut fields);
                    spans.push((fields.0, fields.1));
                }
            });
        }
    }

    /// Starts recording the spans this thread opens (from now on, none before).
    pub fn record() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Recorder))
                .expect("no other global subscriber in the test binary");
        });
        RECORDED.with(|recorded| *recorded.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns what was recorded.
    pub fn take() -> Fields {
        RECORDED.with(|recorded| recorded.borrow_mut().take().unwrap_or_default())
    }
}

/// The `Guard` model every backend's tests use, derived for the backend named (none: the
/// default, PostgreSQL): a generated key, validated columns, a nullable one and a generated
/// timestamp.
#[macro_export]
macro_rules! guard_model {
    ($($backend:literal)?) => {
        $crate::guard_model!(@guard Guard, "The model most tests use.", [$(, backend = $backend)?]);
        $crate::guard_model!(
            @guard RowGuard,
            "`Guard` kept in a table that holds the rows of several tenants: each row's tenant in `tenant_id` (added by the row-level tests' migration).",
            [, tenant_column = "tenant_id" $(, backend = $backend)?]
        );

        /// A row of `row_notes`, a table of several tenants' rows that a later migration adds
        /// (`row_level`'s `NOTES`).
        #[derive(tenancy::TenantModel, Debug, Clone, PartialEq)]
        #[tenancy(table = "row_notes", tenant_column = "tenant_id" $(, backend = $backend)?)]
        pub struct RowNote {
            #[tenancy(id)]
            pub id: i64,
            pub body: String,
        }

        /// A row of `guards` with the tenant it holds, as stored: what the row-level tests
        /// read through the container itself.
        #[derive(tenancy::TenantModel, Debug, Clone, PartialEq)]
        #[tenancy(table = "guards" $(, backend = $backend)?)]
        pub struct StoredGuard {
            #[tenancy(id)]
            pub id: i64,
            pub tenant_id: String,
            pub name: String,
            pub position: String,
        }
    };
    (@guard $name:ident, $doc:literal, [$($attrs:tt)*]) => {
        #[doc = $doc]
        #[derive(tenancy::TenantModel, Debug, Clone, PartialEq)]
        #[tenancy(table = "guards" $($attrs)*)]
        pub struct $name {
            #[tenancy(id, generated)]
            pub id: i64,
            #[tenancy(required, length(max = 50))]
            pub name: String,
            #[tenancy(required)]
            pub position: String,
            #[tenancy(range(min = 16, max = 120))]
            pub age: Option<i32>,
            #[tenancy(generated)]
            pub inserted_at: sqlx::types::time::OffsetDateTime,
        }

        impl $name {
            /// A new, not yet inserted guard (`id` and `inserted_at` are filled by the database).
            pub fn new(name: &str, position: &str) -> Self {
                $name {
                    id: 0,
                    name: name.into(),
                    position: position.into(),
                    age: None,
                    inserted_at: sqlx::types::time::OffsetDateTime::UNIX_EPOCH,
                }
            }
        }
    };
}
