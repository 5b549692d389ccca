//! End-to-end tests of the `tenancy` binary against a real PostgreSQL database
//! (`DATABASE_URL`, or a private throwaway cluster from `tenancy-testdb`), for the `mysql_`
//! tests a MySQL / MariaDB server (`MYSQL_URL`, or a private throwaway server), for the
//! `citus_placement_and_move` test a Citus coordinator (`CITUS_URL`). Before the tests start,
//! the binary says which of those run; the tests of a server that can neither be reached nor
//! started are filtered out (see `tenancy_testdb::select`).
//!
//! Every test has its own migrations folder and its own registry schema, and unique tenant
//! names, so tests run in parallel without seeing each other's tenants.

use std::process::{Command, Output};

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::{MYSQL, POSTGRES, SQLITE};
use tenancy_testdb::select::Backend;
use tenancy_testdb::sqlite::TempFolder;

/// The servers each test needs, by its name.
fn needs(test: &str) -> &'static [Backend] {
    match test {
        "citus_placement_and_move" | "citus_distribute_rows" => &[Backend::Citus],
        "postgres_only_flags_with_a_mysql_url_are_usage_errors"
        | "an_unknown_url_scheme_lists_the_accepted_ones" => &[],
        "mysql_a_fleet_of_two_servers_places_lists_and_drops_tenants" => {
            &[Backend::Mysql, Backend::Postgres]
        }
        t if t.starts_with("mysql_") => &[Backend::Mysql],
        t if t.starts_with("sqlite_") => &[Backend::Sqlite],
        t if t.starts_with("pgbouncer_") => &[Backend::Postgres, Backend::PgBouncer],
        _ => &[Backend::Postgres],
    }
}

tenancy_testdb::select_tests!(needs);

const BIN: &str = env!("CARGO_BIN_EXE_tenancy");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Which server a [`World`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Postgres,
    MySql,
}

/// `MYSQL_URL`, or a private server (started once per test process).
fn mysql_url() -> String {
    tenancy_testdb::mysql_url().unwrap_or_else(|e| panic!("{e}"))
}

/// One test's world: a database URL, a private registry and migrations folder. Dropping it
/// drops every tenant of the registry, the registry itself, the schemas the test made behind
/// tenancy's back, and the folder.
struct World {
    server: Server,
    url: String,
    registry: String,
    dir: TempFolder,
    cleanup: Leftovers,
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl World {
    fn new() -> Self {
        let url = tenancy_testdb::database_url().expect("a test database");
        World::on(Server::Postgres, url)
    }

    /// A world on the MySQL / MariaDB server of `MYSQL_URL`; fails, saying how to point the
    /// tests at one, if it cannot be reached.
    fn mysql() -> Self {
        let url = mysql_url();
        let reached = runtime().block_on(async {
            let conn = MySqlConnection::connect(&url).await?;
            conn.close().await
        });
        if let Err(e) = reached {
            panic!(
                "cannot reach MySQL/MariaDB at {url} ({e}): start it, or point MYSQL_URL at a \
                 server where the user may create databases"
            );
        }
        World::on(Server::MySql, url)
    }

    fn on(server: Server, url: String) -> Self {
        let registry = tenancy_testdb::unique_name("reg");
        let cleanup = match server {
            Server::Postgres => Leftovers::postgres(&url),
            Server::MySql => Leftovers::mysql(&url),
        };
        World {
            server,
            cleanup: cleanup.registry(&registry),
            url,
            registry,
            dir: TempFolder::new("tenancy_cli_migrations").unwrap(),
        }
    }

    /// Writes a migration file into the test's migrations folder.
    fn migration(&self, file: &str, sql: &str) -> &Self {
        std::fs::write(self.dir.join(file), sql).unwrap();
        self
    }

    /// The first migration of every test: the `guards` table of the fixtures.
    fn with_guards(self) -> Self {
        self.migration("1_guards.sql", POSTGRES.guards);
        self
    }

    /// A reversible second migration adding a `badge` column.
    fn add_badge(&self) {
        self.migration("2_badge.up.sql", POSTGRES.badge_up);
        self.migration("2_badge.down.sql", POSTGRES.badge_down);
    }

    /// The MySQL form of [`with_guards`](Self::with_guards) and
    /// [`add_badge`](Self::add_badge)'s migrations.
    fn with_mysql_guards(self) -> Self {
        self.migration("1_guards.sql", MYSQL.guards);
        self
    }

    fn add_mysql_badge(&self) {
        self.migration("2_badge.up.sql", MYSQL.badge_up);
        self.migration("2_badge.down.sql", MYSQL.badge_down);
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("DATABASE_URL", &self.url)
            .arg("--registry")
            .arg(&self.registry)
            .arg("--migrations")
            .arg(self.dir.path())
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run tenancy").into()
    }

    /// Runs and expects exit code 0.
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, Some(0), "tenancy {args:?} failed:\n{run:?}");
        run
    }

    /// Runs and expects exit code 1.
    fn fails(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, Some(1), "tenancy {args:?} did not fail:\n{run:?}");
        run
    }

    fn tenant(&self, prefix: &str) -> String {
        tenancy_testdb::unique_name(prefix)
    }

    fn create(&self, name: &str) {
        let run = self.ok(&["create", name]);
        assert_eq!(run.lines(), [format!("created {name}")]);
    }

    fn list(&self) -> Vec<String> {
        self.ok(&["list"])
            .lines()
            .iter()
            .map(|l| l.to_string())
            .collect()
    }

    /// The words of `tenant`'s `status` line after its name, e.g.
    /// `["applied", "1,2", "pending", "-"]`.
    fn status_of(&self, tenant: &str) -> Vec<String> {
        let run = self.ok(&["status"]);
        let line = run
            .lines()
            .into_iter()
            .find(|l| l.split_whitespace().next() == Some(tenant))
            .unwrap_or_else(|| panic!("no status line for {tenant}:\n{run:?}"))
            .to_owned();
        line.split_whitespace().skip(1).map(str::to_owned).collect()
    }

    fn sql<T>(&self, f: impl AsyncFnOnce(&mut PgConnection) -> T) -> T {
        assert_eq!(self.server, Server::Postgres);
        runtime().block_on(async {
            let mut conn = PgConnection::connect(&self.url).await.unwrap();
            let out = f(&mut conn).await;
            conn.close().await.unwrap();
            out
        })
    }

    fn mysql_sql<T>(&self, f: impl AsyncFnOnce(&mut MySqlConnection) -> T) -> T {
        assert_eq!(self.server, Server::MySql);
        runtime().block_on(async {
            let mut conn = MySqlConnection::connect(&self.url).await.unwrap();
            let out = f(&mut conn).await;
            conn.close().await.unwrap();
            out
        })
    }

    /// Runs `statement` (PostgreSQL: any number of statements; MySQL: one).
    fn execute(&self, statement: &str) {
        let statement = AssertSqlSafe(statement.to_owned());
        match self.server {
            Server::Postgres => self.sql(async |conn| {
                sqlx::raw_sql(statement).execute(conn).await.unwrap();
            }),
            Server::MySql => self.mysql_sql(async |conn| {
                sqlx::raw_sql(statement).execute(conn).await.unwrap();
            }),
        }
    }

    /// Whether the schema (MySQL: database) `schema` exists.
    fn schema_exists(&self, schema: &str) -> bool {
        match self.server {
            Server::Postgres => self.sql(async |conn| {
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                    .bind(schema)
                    .fetch_one(conn)
                    .await
                    .unwrap()
            }),
            Server::MySql => self.mysql_sql(async |conn| {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
                )
                .bind(schema)
                .fetch_one(conn)
                .await
                .unwrap();
                n > 0
            }),
        }
    }

    /// Whether `schema.guards` has a column `column`.
    fn has_column(&self, schema: &str, column: &str) -> bool {
        match self.server {
            Server::Postgres => self.sql(async |conn| {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = $1 AND table_name = 'guards' AND column_name = $2)",
                )
                .bind(schema)
                .bind(column)
                .fetch_one(conn)
                .await
                .unwrap()
            }),
            Server::MySql => self.mysql_sql(async |conn| {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.columns
                     WHERE table_schema = ? AND table_name = 'guards' AND column_name = ?",
                )
                .bind(schema)
                .bind(column)
                .fetch_one(conn)
                .await
                .unwrap();
                n > 0
            }),
        }
    }

    /// Creates a schema that is not a tenant.
    fn foreign_schema(&mut self, prefix: &str) -> String {
        let name = tenancy_testdb::unique_name(prefix);
        self.execute(&match self.server {
            Server::Postgres => format!("CREATE SCHEMA \"{name}\""),
            Server::MySql => format!("CREATE DATABASE `{name}`"),
        });
        self.cleanup.add_container(&name);
        name
    }
}

#[test]
fn create_list_status_drop() {
    let w = World::new().with_guards();
    let acme = w.tenant("acme");
    assert!(w.list().is_empty(), "a fresh registry has no tenants");

    w.create(&acme);
    assert_eq!(w.list(), [acme.as_str()]);
    assert_eq!(w.status_of(&acme), ["applied", "1", "pending", "-"]);
    assert!(w.schema_exists(&acme));
    assert!(
        w.has_column(&acme, "id"),
        "migration 1 ran in the tenant's schema"
    );

    let again = w.fails(&["create", &acme]);
    assert!(again.stderr.contains("already exists"), "{again:?}");

    let dropped = w.ok(&["drop", &acme]);
    assert_eq!(dropped.lines(), [format!("dropped {acme}")]);
    assert!(w.list().is_empty());
    assert!(!w.schema_exists(&acme));
    assert!(w.ok(&["status"]).stdout.is_empty());
}

#[test]
fn create_in_list_and_drop_a_row_level_tenant() {
    let w = World::new().with_guards();
    w.migration(
        "2_tenant_column.sql",
        "ALTER TABLE guards ADD COLUMN tenant_id text NOT NULL DEFAULT ''",
    );
    let (free, acme) = (w.tenant("free"), w.tenant("acme"));
    w.create(&free);
    let created = w.ok(&["create", &acme, "--in", &free]);
    assert_eq!(created.lines(), [format!("created {acme} in {free}")]);
    let mut expected = vec![acme.clone(), free.clone()];
    expected.sort();
    assert_eq!(w.list(), expected);
    assert!(!w.schema_exists(&acme), "a row-level tenant has no schema");

    let refused = w.fails(&["drop", &free]);
    assert!(refused.stderr.contains("row-level"), "{refused:?}");
    // Neither the source of a clone nor of an export: refused naming it and its container,
    // nothing made or written.
    let copy = w.tenant("copy");
    for (args, operation) in [
        (vec!["clone", &acme, &copy], "clone"),
        (vec!["export", &acme], "export"),
    ] {
        let refused = w.fails(&args);
        for said in [
            format!("{operation} is not supported"),
            format!("\"{acme}\" is a row-level tenant"),
            format!("tenant \"{free}\""),
        ] {
            assert!(refused.stderr.contains(&said), "{said}: {refused:?}");
        }
        assert!(refused.stdout.is_empty(), "{refused:?}");
    }
    assert!(!w.schema_exists(&copy));
    let dropped = w.ok(&["drop", &acme]);
    assert_eq!(
        dropped.lines(),
        [format!("dropped {acme} (0 rows deleted)")]
    );
    assert_eq!(w.list(), [free.as_str()]);
    w.ok(&["drop", &free]);
}

#[test]
fn promote_and_demote_a_row_level_tenant() {
    let w = World::new().with_guards();
    w.migration(
        "2_tenant_column.sql",
        "ALTER TABLE guards ADD COLUMN tenant_id text NOT NULL DEFAULT ''",
    );
    let (free, acme) = (w.tenant("free"), w.tenant("acme"));
    w.create(&free);
    w.ok(&["create", &acme, "--in", &free]);
    w.execute(&format!(
        "INSERT INTO \"{free}\".guards (name, position, tenant_id) VALUES ('Abu', 'Guard', '{acme}'), ('Bea', 'Guard', '{acme}')"
    ));
    let promoted = w.ok(&["promote", &acme]);
    assert_eq!(
        promoted.lines(),
        [format!(
            "promoted {acme} to a schema of its own (2 rows moved)"
        )]
    );
    // Each step on stderr (no terminal: a line each), the catch-up of rows inserted
    // meanwhile (none) too.
    assert_eq!(
        promoted.stderr.lines().collect::<Vec<_>>(),
        [
            format!("promote {acme}: making its schema"),
            format!(
                "promote {acme}: copied guards into {acme}: 2 rows (1/1 tables, 2 rows so far)"
            ),
            format!(
                "promote {acme}: caught up guards into {acme}: 0 rows (1/1 tables, 0 rows so far)"
            ),
            format!(
                "promote {acme}: deleted guards from {free}: 2 rows (1/1 tables, 2 rows so far)"
            ),
            format!("promote {acme}: switching (1 table, 2 rows moved)"),
        ],
        "{promoted:?}"
    );
    assert!(w.schema_exists(&acme), "its own schema");
    let refused = w.fails(&["promote", &acme]);
    assert!(refused.stderr.contains("of its own already"), "{refused:?}");
    let demoted = w.ok(&["demote", &acme, "--into", &free]);
    assert_eq!(
        demoted.lines(),
        [format!("demoted {acme} into {free} (2 rows moved)")]
    );
    assert_eq!(
        demoted.stderr.lines().collect::<Vec<_>>(),
        [
            format!("demote {acme}: copied guards into {free}: 2 rows (1/1 tables, 2 rows so far)"),
            format!("demote {acme}: switching and dropping its schema (1 table, 2 rows moved)"),
        ],
        "{demoted:?}"
    );
    assert!(!w.schema_exists(&acme), "its schema dropped");
    let dropped = w.ok(&["drop", &acme]);
    assert_eq!(
        dropped.lines(),
        [format!("dropped {acme} (2 rows deleted)")]
    );
    // Each batch of its rows on stderr (no terminal: a line each).
    assert_eq!(
        dropped.stderr.lines().collect::<Vec<_>>(),
        [format!(
            "drop {acme}: deleted 2 rows from guards (0/1 tables, 2 rows so far)"
        )],
        "{dropped:?}"
    );
    w.ok(&["drop", &free]);
}

/// Through PgBouncer in transaction mode, said on the URL alone (`?pgbouncer=true`, no
/// `--pgbouncer`): each run is a new client on server connections earlier runs left their
/// statements on, so a named statement would collide (42P05).
#[test]
fn pgbouncer_url_flag_runs_the_lifecycle() {
    let w = World::new().with_guards();
    let url = tenancy_testdb::pgbouncer_url().unwrap_or_else(|e| panic!("{e}"));
    let sep = if url.contains('?') { '&' } else { '?' };
    let bounced = format!("{url}{sep}pgbouncer=true");
    let run = |args: &[&str]| -> Run {
        let run: Run = w
            .command(args)
            .env("DATABASE_URL", &bounced)
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, Some(0), "tenancy {args:?} failed:\n{run:?}");
        run
    };
    let names: Vec<String> = (0..3).map(|i| w.tenant(&format!("pgb{i}"))).collect();
    for name in &names {
        run(&["create", name]);
    }
    w.add_badge();
    let migrated = run(&["migrate", "--all", "--concurrency", "3"]);
    assert!(
        migrated
            .stdout
            .contains("migrated 3, up to date 0, failed 0"),
        "{migrated:?}"
    );
    for name in &names {
        assert!(w.has_column(name, "badge"), "{name} was migrated");
    }
    let mut listed = run(&["list"]).stdout;
    for name in &names {
        assert!(listed.contains(name.as_str()), "{listed}");
    }
    for name in &names {
        run(&["drop", name]);
    }
    listed = run(&["list"]).stdout;
    assert!(listed.is_empty(), "{listed}");
}

/// A command opens one connection: its pool's first, which it then uses (no probe before the
/// pool). Counted by the server, in a database of the test's own (`pg_stat_database.sessions`).
#[test]
fn a_command_opens_one_connection() {
    use sqlx::ConnectOptions;
    let w = World::new();
    let database = tenancy_testdb::unique_name("onecon");
    w.execute(&format!("CREATE DATABASE {database}"));
    let options: sqlx::postgres::PgConnectOptions = w.url.parse().unwrap();
    let url = options.database(&database).to_url_lossy().to_string();
    let run: Run = w
        .command(&["list"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, Some(0), "{run:?}");
    let sessions = w.sql(async |conn| {
        // The server counts a session when it ends; wait for the command's to be counted.
        let mut sessions = 0;
        for _ in 0..50 {
            sessions = sqlx::query_scalar::<_, i64>(
                "SELECT sessions FROM pg_stat_database WHERE datname = $1",
            )
            .bind(&database)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            if sessions > 0 {
                // Any second connection would have ended by now too.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                sessions = sqlx::query_scalar::<_, i64>(
                    "SELECT sessions FROM pg_stat_database WHERE datname = $1",
                )
                .bind(&database)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        sessions
    });
    w.execute(&format!("DROP DATABASE {database} WITH (FORCE)"));
    assert_eq!(sessions, 1, "`tenancy list` opened {sessions} connections");
}

#[test]
fn a_tenant_whose_schema_is_gone_is_refused_by_migrate_and_unregistered_by_drop() {
    let w = World::new().with_guards();
    let acme = w.tenant("acme");
    w.create(&acme);
    w.add_badge();
    w.execute(&format!("DROP SCHEMA \"{acme}\" CASCADE"));
    let refused = w.fails(&["migrate", &acme]);
    assert!(
        refused
            .stderr
            .contains("is registered but its schema does not exist"),
        "{refused:?}"
    );
    assert!(!w.schema_exists(&acme), "nothing was created in its place");
    let dropped = w.ok(&["drop", &acme]);
    assert_eq!(
        dropped.lines(),
        [format!(
            "dropped {acme} (its schema was already gone; unregistered it)"
        )]
    );
    assert!(w.list().is_empty());
    let bad = w.run(&["--lock-timeout=0", "list"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(
        bad.stderr
            .contains("--lock-timeout must be a positive number"),
        "{bad:?}"
    );
}

#[test]
fn migrate_all_applies_a_new_migration_and_rollback_reverts_it() {
    let w = World::new().with_guards();
    let (a, b) = (w.tenant("a"), w.tenant("b"));
    w.create(&a);
    w.create(&b);

    w.add_badge();
    assert_eq!(w.status_of(&a), ["applied", "1", "pending", "2"]);

    let run = w.ok(&["migrate", "--all", "--concurrency", "2"]);
    let lines = run.lines();
    assert!(
        lines.contains(&format!("{a}: migrated 2").as_str()),
        "{run:?}"
    );
    assert!(
        lines.contains(&format!("{b}: migrated 2").as_str()),
        "{run:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&"migrated 2, up to date 0, failed 0"),
        "{run:?}"
    );
    assert!(run.stderr.is_empty(), "{run:?}");
    for t in [&a, &b] {
        assert_eq!(w.status_of(t), ["applied", "1,2", "pending", "-"]);
        assert!(w.has_column(t, "badge"));
    }

    let again = w.ok(&["migrate", "--all"]);
    assert_eq!(again.lines(), ["migrated 0, up to date 2, failed 0"]);

    let back = w.ok(&["rollback", &a, "--to", "1"]);
    assert_eq!(back.lines(), [format!("{a}: rolled back 2")]);
    assert!(!w.has_column(&a, "badge"));
    assert!(w.has_column(&b, "badge"));
    assert_eq!(w.status_of(&a), ["applied", "1", "pending", "2"]);

    let one = w.ok(&["migrate", &a]);
    assert_eq!(one.lines(), [format!("{a}: migrated 2")]);

    let all_back = w.ok(&["rollback", "--all", "--to", "1"]);
    assert_eq!(
        all_back.lines().last(),
        Some(&"rolled back 2, nothing to roll back 0, failed 0"),
        "{all_back:?}"
    );
    assert!(!w.has_column(&b, "badge"));
}

#[test]
fn dry_run_lists_pending_and_changes_nothing() {
    let w = World::new().with_guards();
    let acme = w.tenant("acme");
    w.create(&acme);
    w.add_badge();

    let run = w.ok(&["migrate", "--all", "--dry-run"]);
    assert_eq!(
        run.lines(),
        [
            format!("{acme}  would apply 2"),
            "would migrate 1, up to date 0, would fail 0".to_owned()
        ]
    );
    let one = w.ok(&["migrate", &acme, "--dry-run"]);
    assert_eq!(one.lines(), [format!("{acme}  would apply 2")]);

    assert_eq!(w.status_of(&acme), ["applied", "1", "pending", "2"]);
    assert!(!w.has_column(&acme, "badge"));

    w.ok(&["migrate", &acme]);
    let done = w.ok(&["migrate", "--all", "--dry-run"]);
    assert_eq!(done.lines()[0], format!("{acme}  up to date"));
}

/// What `migrate --all` did to each tenant, from its output: `Some(versions)` migrated,
/// `None` failed; up-to-date tenants have no line.
fn migrate_outcome(run: &Run, tenant: &str) -> &'static str {
    let migrated = run
        .lines()
        .iter()
        .any(|l| l.starts_with(&format!("{tenant}: migrated ")));
    let failed = run
        .stderr
        .lines()
        .any(|l| l.starts_with(&format!("error: {tenant}: ")));
    match (migrated, failed) {
        (true, false) => "migrated",
        (false, true) => "failed",
        (false, false) => "up to date",
        (true, true) => panic!("{tenant} both migrated and failed:\n{run:?}"),
    }
}

#[test]
fn the_dry_run_plan_is_what_migrate_then_does() {
    let w = World::new().with_guards();
    let (behind, changed, current) = (w.tenant("behind"), w.tenant("changed"), w.tenant("current"));
    w.create(&behind);
    w.create(&changed);
    w.add_badge();
    w.create(&current);
    // `changed` ran another text of migration 1 than the folder holds now.
    w.execute(&format!(
        "UPDATE \"{}\".migrations SET checksum = '\\x00' WHERE tenant = '{changed}' AND version = 1",
        w.registry
    ));

    let plan = w.fails(&["migrate", "--all", "--dry-run"]);
    let planned = |tenant: &str| -> &str {
        let line = plan
            .lines()
            .into_iter()
            .find(|l| l.split_whitespace().next() == Some(tenant))
            .unwrap_or_else(|| panic!("no plan line for {tenant}:\n{plan:?}"));
        let what = line[tenant.len()..].trim_start();
        if what.starts_with("would apply ") {
            "migrated"
        } else if what.starts_with("would fail: ") {
            "failed"
        } else {
            assert_eq!(what, "up to date", "{plan:?}");
            "up to date"
        }
    };
    assert_eq!(
        [&behind, &changed, &current].map(|t| planned(t)),
        ["migrated", "failed", "up to date"],
        "{plan:?}"
    );

    let run = w.fails(&["migrate", "--all"]);
    for t in [&behind, &changed, &current] {
        assert_eq!(
            planned(t),
            migrate_outcome(&run, t),
            "{t}:\n{plan:?}\n{run:?}"
        );
    }
    assert!(
        run.lines()
            .contains(&format!("{behind}: migrated 2").as_str()),
        "the versions planned: {plan:?}\n{run:?}"
    );
    // The summaries count the same: migrate, up to date, fail.
    let counts = |r: &Run| -> Vec<String> {
        let last = r.lines().last().copied().unwrap_or_default();
        last.split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(counts(&plan), ["1", "1", "1"], "{plan:?}");
    assert_eq!(counts(&plan), counts(&run), "{plan:?}\n{run:?}");
}

#[test]
fn a_broken_migration_fails_only_its_tenant() {
    let w = World::new().with_guards();
    let (good, bad) = (w.tenant("good"), w.tenant("bad"));
    w.create(&good);
    w.create(&bad);
    // Migration 2 creates `badges`, which `bad` already has.
    w.execute(&format!("CREATE TABLE \"{bad}\".badges (id int)"));
    w.migration("2_badges.sql", "CREATE TABLE badges (id int, name text);");

    let run = w.fails(&["migrate", "--all"]);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(&format!("error: {bad}: migration 2 (badges) failed"))),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("already exists"),
        "the database's reason: {run:?}"
    );
    assert!(!run.stderr.contains(&good), "{run:?}");
    assert!(
        run.lines()
            .contains(&format!("{good}: migrated 2").as_str()),
        "{run:?}"
    );
    assert_eq!(
        run.lines().last(),
        Some(&"migrated 1, up to date 0, failed 1"),
        "{run:?}"
    );

    assert_eq!(w.status_of(&good), ["applied", "1,2", "pending", "-"]);
    assert_eq!(w.status_of(&bad), ["applied", "1", "pending", "2"]);

    // The one-tenant form fails the same way, with the error chain.
    let one = w.fails(&["migrate", &bad]);
    assert!(
        one.stderr.starts_with("error: migration 2 (badges) failed"),
        "{one:?}"
    );
    assert!(one.stdout.is_empty(), "{one:?}");
}

#[test]
fn rename_keeps_data_and_history() {
    let w = World::new().with_guards();
    let (old, new, other) = (w.tenant("old"), w.tenant("new"), w.tenant("other"));
    w.create(&old);
    w.create(&other);
    w.execute(&format!(
        "INSERT INTO \"{old}\".guards (id, name, position) VALUES (7, 'Abu', 'Guard')"
    ));

    let run = w.ok(&["rename", &old, &new]);
    assert_eq!(run.lines(), [format!("renamed {old} to {new}")]);
    let mut expected = vec![new.clone(), other.clone()];
    expected.sort();
    assert_eq!(w.list(), expected);
    assert!(!w.schema_exists(&old));
    assert_eq!(w.status_of(&new), ["applied", "1", "pending", "-"]);
    let id: i64 = w.sql(async |conn| {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT id FROM \"{new}\".guards")))
            .fetch_one(conn)
            .await
            .unwrap()
    });
    assert_eq!(id, 7);

    let taken = w.fails(&["rename", &new, &other]);
    assert!(taken.stderr.contains("already exists"), "{taken:?}");
    let gone = w.fails(&["rename", &old, &w.tenant("x")]);
    assert!(gone.stderr.contains("is not a tenant"), "{gone:?}");
}

#[test]
fn clone_copies_rows_and_history_and_refuses_a_taken_name() {
    let w = World::new().with_guards();
    let (tpl, copy) = (w.tenant("tpl"), w.tenant("copy"));
    w.create(&tpl);
    w.execute(&format!(
        "INSERT INTO \"{tpl}\".guards (id, name, position) VALUES (7, 'Abu', 'Guard')"
    ));

    let run = w.ok(&["clone", &tpl, &copy]);
    assert_eq!(run.lines(), [format!("cloned {tpl} to {copy}")]);
    let mut expected = vec![copy.clone(), tpl.clone()];
    expected.sort();
    assert_eq!(w.list(), expected);
    assert_eq!(w.status_of(&copy), ["applied", "1", "pending", "-"]);
    let rows: Vec<(i64, String)> = w.sql(async |conn| {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, name FROM \"{copy}\".guards"
        )))
        .fetch_all(conn)
        .await
        .unwrap()
    });
    assert_eq!(rows, [(7, "Abu".to_owned())]);

    let taken = w.fails(&["clone", &tpl, &copy]);
    assert!(taken.stderr.contains("already exists"), "{taken:?}");
    let gone = w.fails(&["clone", &w.tenant("x"), &w.tenant("y")]);
    assert!(gone.stderr.contains("is not a tenant"), "{gone:?}");
    let help = w.ok(&["clone", "--help"]);
    assert!(help.stdout.contains("copy of another"), "{help:?}");
}

#[test]
fn export_and_import_move_a_tenant_through_a_pipe_and_refuse_a_cut_archive() {
    let w = World::new().with_guards();
    let (src, copy) = (w.tenant("src"), w.tenant("copy"));
    w.create(&src);
    w.execute(&format!(
        "INSERT INTO \"{src}\".guards (id, name, position) VALUES (7, 'Abu', 'Guard')"
    ));

    let exported = w.ok(&["export", &src]);
    assert!(exported.stdout.starts_with('{'), "{exported:?}");
    assert!(
        exported
            .stderr
            .contains(&format!("exported {src}: 1 tables, 1 rows")),
        "{exported:?}"
    );
    let import = |name: &str, archive: &str| -> Run {
        let mut child = w
            .command(&["import", name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tenancy");
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, archive.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().expect("run tenancy").into()
    };
    let cut = &exported.stdout[..exported.stdout.len() - 20];
    let refused = import(&copy, cut);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("archive is refused"), "{refused:?}");
    assert!(!w.list().contains(&copy));

    let imported = import(&copy, &exported.stdout);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    assert_eq!(imported.lines(), [format!("imported {copy}")]);
    let rows: Vec<(i64, String)> = w.sql(async |conn| {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, name FROM \"{copy}\".guards"
        )))
        .fetch_all(conn)
        .await
        .unwrap()
    });
    assert_eq!(rows, [(7, "Abu".to_owned())]);
    assert_eq!(w.status_of(&copy), ["applied", "1", "pending", "-"]);
}

#[test]
fn drop_refuses_public_and_foreign_schemas() {
    let mut w = World::new().with_guards();
    let foreign = w.foreign_schema("plain");

    let public = w.fails(&["drop", "public"]);
    assert_eq!(
        public.stderr.trim_end(),
        "error: invalid tenant name \"public\": the name is reserved"
    );
    assert!(public.stdout.is_empty());
    assert!(w.schema_exists("public"));

    let not_tenant = w.fails(&["drop", &foreign]);
    assert!(not_tenant.stderr.starts_with("error: "), "{not_tenant:?}");
    assert!(
        not_tenant.stderr.contains("is not a tenant"),
        "{not_tenant:?}"
    );
    assert!(not_tenant.stderr.contains(&foreign), "{not_tenant:?}");
    assert!(w.schema_exists(&foreign));

    let registry = w.registry.clone();
    let reg = w.fails(&["drop", &registry]);
    assert!(reg.stderr.contains("the name is reserved"), "{reg:?}");
    assert!(w.schema_exists(&registry));
}

#[test]
fn invalid_names_show_the_rule() {
    let w = World::new().with_guards();
    let run = w.fails(&["create", "Tenant1"]);
    assert_eq!(
        run.stderr.trim_end(),
        "error: invalid tenant name \"Tenant1\": it contains the upper-case letter 'T' at byte 0; upper-case letters are not allowed: a tenant name holds only a-z, 0-9 and _"
    );
    assert!(run.stdout.is_empty());
    assert!(!w.schema_exists("Tenant1"));

    let dash = w.fails(&["migrate", "tenant-1"]);
    assert!(
        dash.stderr.contains("it contains '-' at byte 6"),
        "{dash:?}"
    );
    assert!(w.list().is_empty());
}

#[test]
fn missing_database_url_is_a_clear_usage_error() {
    let w = World::new();
    let run: Run = w
        .command(&["list"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        "error: no database URL: pass --database-url <URL> or set DATABASE_URL"
    );
    assert!(run.stdout.is_empty());

    let empty: Run = w
        .command(&["list"])
        .env("DATABASE_URL", "")
        .output()
        .unwrap()
        .into();
    assert_eq!(empty.code, Some(2), "{empty:?}");
}

#[test]
fn setup_errors_are_explained() {
    let w = World::new();
    std::fs::remove_dir(w.dir.path()).unwrap();
    let run = w.fails(&["status"]);
    assert!(
        run.stderr
            .starts_with("error: cannot load the tenant migrations from"),
        "{run:?}"
    );
    assert!(run.stderr.contains("caused by: "), "{run:?}");

    let bad: Run = Command::new(BIN)
        .env("DATABASE_URL", &w.url)
        .args(["--registry", "Bad-Registry", "list"])
        .output()
        .unwrap()
        .into();
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(
        bad.stderr
            .starts_with("error: invalid --registry \"Bad-Registry\""),
        "{bad:?}"
    );
    assert!(
        bad.stderr.contains("caused by: invalid tenant name"),
        "{bad:?}"
    );

    let refused: Run = w
        .command(&["list"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap()
        .into();
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .starts_with("error: cannot connect to the database\n  caused by: "),
        "the server's reason, not a pool timeout: {refused:?}"
    );
    assert!(!refused.stderr.contains("timed out"), "{refused:?}");
}

/// A session-level advisory lock held on a connection of its own, which a migration can wait
/// for (`SELECT pg_advisory_xact_lock(<key>)`) so that a run stays in flight until released.
struct HeldLock {
    rt: tokio::runtime::Runtime,
    conn: Option<PgConnection>,
    key: i64,
}

impl HeldLock {
    fn take(url: &str) -> Self {
        let key = tenancy_testdb::unique_lock_key();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conn = rt.block_on(async {
            let mut conn = PgConnection::connect(url).await.unwrap();
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(key)
                .execute(&mut conn)
                .await
                .unwrap();
            conn
        });
        HeldLock {
            rt,
            conn: Some(conn),
            key,
        }
    }

    /// How many sessions wait for the lock.
    fn waiters(&self, w: &World) -> i64 {
        w.sql(async |conn| {
            sqlx::query_scalar(tenancy_testdb::ADVISORY_LOCK_WAITERS)
                .bind(self.key)
                .fetch_one(conn)
                .await
                .unwrap()
        })
    }

    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.rt.block_on(conn.close()).unwrap();
        }
    }
}

#[test]
fn a_killed_migrate_all_converges_on_rerun_with_no_half_migrated_tenant() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    let w = World::new().with_guards();
    let tenants: Vec<String> = (0..6).map(|i| w.tenant(&format!("k{i}"))).collect();
    for t in &tenants {
        w.create(t);
    }
    // The run goes through the tenants in name order, one at a time; the last one's migration
    // waits for a lock this test holds, between its two halves, so the run is provably in
    // flight, past the others, when it is killed.
    let mut lock = HeldLock::take(&w.url);
    let last = tenants.iter().max().unwrap();
    w.migration(
        "2_slow.sql",
        &format!(
            "CREATE TABLE first_half (id int); \
             SELECT pg_advisory_xact_lock({}) WHERE current_schema() = '{last}'; \
             CREATE TABLE second_half (id int);",
            lock.key
        ),
    );
    let mut child = w
        .command(&["migrate", "--all", "--concurrency", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lock.waiters(&w) == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("the run ended before it was killed: {status}\n{stderr}");
        }
        assert!(Instant::now() < deadline, "the run never reached {last}");
        std::thread::sleep(Duration::from_millis(10));
    }

    let table = |schema: &str, table: &str| {
        w.sql(async |conn| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)",
            )
            .bind(schema.to_owned())
            .bind(table.to_owned())
            .fetch_one(conn)
            .await
            .unwrap()
        })
    };
    let migrated_while_running = tenants.iter().filter(|t| table(t, "second_half")).count();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run must still be running when killed"
    );
    child.kill().unwrap(); // SIGKILL: no cleanup code of ours runs
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    assert!(
        0 < migrated_while_running && migrated_while_running < tenants.len(),
        "{migrated_while_running} of {} migrated when the run was killed",
        tenants.len()
    );
    lock.release();

    // The server ends the killed connection's transaction (rolled back or, as one whole batch
    // it already had, committed); wait for that to happen.
    let mut settled = false;
    for _ in 0..100 {
        let busy: bool = w.sql(async |conn| {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%first_half%' \
                 AND state <> 'idle' AND pid <> pg_backend_pid())",
            )
            .fetch_one(conn)
            .await
            .unwrap()
        });
        if !busy {
            settled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(settled, "the killed run's transaction never ended");
    let mut migrated = 0;
    for t in &tenants {
        let (first, second) = (table(t, "first_half"), table(t, "second_half"));
        assert_eq!(first, second, "tenant {t} is half-migrated");
        migrated += usize::from(first);
    }
    assert!(
        migrated == migrated_while_running || migrated == migrated_while_running + 1,
        "{migrated} migrated, {migrated_while_running} before the kill"
    );

    let rerun = w.ok(&["migrate", "--all"]);
    let summary = format!(
        "migrated {}, up to date {migrated}, failed 0",
        tenants.len() - migrated
    );
    assert!(rerun.stdout.contains(&summary), "{rerun:?}");
    for t in &tenants {
        assert!(table(t, "second_half"), "{t}");
    }
}

// ---------------------------------------------------------------------------
// MySQL / MariaDB: the same commands, picked by the URL's scheme
// ---------------------------------------------------------------------------

#[test]
fn mysql_create_list_migrate_status_rollback_drop() {
    let w = World::mysql().with_mysql_guards();
    let (a, b) = (w.tenant("a"), w.tenant("b"));
    assert!(w.list().is_empty(), "a fresh registry has no tenants");

    w.create(&a);
    w.create(&b);
    assert_eq!(w.list(), [a.as_str(), b.as_str()]);
    assert_eq!(w.status_of(&a), ["applied", "1", "pending", "-"]);
    assert!(w.schema_exists(&a), "a database per tenant");
    assert!(
        w.has_column(&a, "id"),
        "migration 1 ran in the tenant's database"
    );
    let again = w.fails(&["create", &a]);
    assert!(again.stderr.contains("already exists"), "{again:?}");

    w.add_mysql_badge();
    assert_eq!(w.status_of(&b), ["applied", "1", "pending", "2"]);
    let plan = w.ok(&["migrate", "--all", "--dry-run"]);
    assert_eq!(
        plan.lines().last(),
        Some(&"would migrate 2, up to date 0, would fail 0"),
        "{plan:?}"
    );
    assert!(!w.has_column(&a, "badge"), "a dry run changes nothing");

    let one = w.ok(&["migrate", &a]);
    assert_eq!(one.lines(), [format!("{a}: migrated 2")]);
    let all = w.ok(&["migrate", "--all", "--concurrency", "2"]);
    assert_eq!(
        all.lines(),
        [
            format!("{b}: migrated 2"),
            "migrated 1, up to date 1, failed 0".to_owned()
        ],
        "{all:?}"
    );
    for t in [&a, &b] {
        assert_eq!(w.status_of(t), ["applied", "1,2", "pending", "-"]);
        assert!(w.has_column(t, "badge"), "{t}");
    }

    let back = w.ok(&["rollback", &a, "--to", "1"]);
    assert_eq!(back.lines(), [format!("{a}: rolled back 2")]);
    assert!(!w.has_column(&a, "badge"));
    let all_back = w.ok(&["rollback", "--all", "--to", "1"]);
    assert_eq!(
        all_back.lines(),
        [
            format!("{b}: rolled back 2"),
            "rolled back 1, nothing to roll back 1, failed 0".to_owned()
        ],
        "{all_back:?}"
    );
    assert!(!w.has_column(&b, "badge"));

    let dropped = w.ok(&["drop", &a]);
    assert_eq!(dropped.lines(), [format!("dropped {a}")]);
    assert!(!w.schema_exists(&a));
    w.execute(&format!("DROP DATABASE `{b}`"));
    let gone = w.ok(&["drop", &b]);
    assert_eq!(
        gone.lines(),
        [format!(
            "dropped {b} (its database was already gone; unregistered it)"
        )]
    );
    assert!(w.list().is_empty());
    assert!(w.ok(&["status"]).stdout.is_empty());
}

#[test]
fn mysql_rename_keeps_data_and_drop_refuses_foreign_databases() {
    let mut w = World::mysql().with_mysql_guards();
    let (old, new) = (w.tenant("old"), w.tenant("new"));
    w.create(&old);
    w.execute(&format!(
        "INSERT INTO `{old}`.guards (id, name, position) VALUES (7, 'Abu', 'Guard')"
    ));

    let run = w.ok(&["rename", &old, &new]);
    assert_eq!(run.lines(), [format!("renamed {old} to {new}")]);
    assert_eq!(w.list(), [new.as_str()]);
    assert!(!w.schema_exists(&old));
    assert_eq!(w.status_of(&new), ["applied", "1", "pending", "-"]);
    let id: i64 = w.mysql_sql(async |conn| {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT id FROM `{new}`.guards")))
            .fetch_one(conn)
            .await
            .unwrap()
    });
    assert_eq!(id, 7);

    let foreign = w.foreign_schema("plain");
    let refused = w.fails(&["drop", &foreign]);
    assert!(refused.stderr.contains("is not a tenant"), "{refused:?}");
    assert!(w.schema_exists(&foreign));
    let server = w.fails(&["drop", "mysql"]);
    assert!(server.stderr.contains("the name is reserved"), "{server:?}");
}

#[test]
fn mysql_a_mariadb_url_is_a_mysql_url() {
    let w = World::mysql().with_mysql_guards();
    let acme = w.tenant("acme");
    w.create(&acme);
    let url = w.url.replacen("mysql://", "mariadb://", 1);
    assert!(url.starts_with("mariadb://"), "{url}");
    let run: Run = w
        .command(&["list"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines(), [acme.as_str()]);
}

/// A run of the binary with `url` and `args` only (no server is reached: usage errors).
fn run_with_url(url: &str, args: &[&str]) -> Run {
    Command::new(BIN)
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn postgres_only_flags_with_a_mysql_url_are_usage_errors() {
    for url in [
        "mysql://root@127.0.0.1:1/none",
        "mariadb://root@127.0.0.1:1/none",
        "sqlite:///nonexistent/folder",
    ] {
        let run = run_with_url(url, &["--pgbouncer", "list"]);
        assert_eq!(run.code, Some(2), "{run:?}");
        assert_eq!(
            run.stderr.trim_end(),
            "error: --pgbouncer is a PostgreSQL option; the database URL names another database"
        );
        assert!(run.stdout.is_empty(), "{run:?}");
    }
}

#[test]
fn an_unknown_url_scheme_lists_the_accepted_ones() {
    let run = run_with_url("oracle://user:secret@h/db", &["list"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        "error: unsupported database URL scheme \"oracle\": use postgres://, postgresql://, \
         mysql://, mariadb:// or sqlite://"
    );
    let none = run_with_url("localhost/db", &["list"]);
    assert_eq!(none.code, Some(2), "{none:?}");
    assert!(
        none.stderr
            .starts_with("error: the database URL has no scheme: use postgres://"),
        "{none:?}"
    );
}

/// The command on SQLite: a folder of tenant files, no server.
#[test]
fn sqlite_create_migrate_rename_drop_in_a_folder() {
    let dir = TempFolder::new("sqlite").unwrap();
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(migrations.join("1_guards.sql"), SQLITE.guards).unwrap();
    let url = format!("sqlite://{}", dir.join("tenants").display());
    let run = |args: &[&str]| -> Run {
        Command::new(BIN)
            .env("DATABASE_URL", &url)
            .arg("--migrations")
            .arg(&migrations)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let ok = |args: &[&str]| {
        let r = run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
        r.stdout
    };
    ok(&["create", "acme"]);
    assert!(dir.join("tenants/acme.db").exists());
    assert_eq!(ok(&["list"]), "acme\n");
    std::fs::write(migrations.join("2_badge.sql"), SQLITE.badge_up).unwrap();
    assert!(ok(&["status"]).contains("pending 2"));
    assert!(ok(&["migrate", "--all"]).contains("migrated 1, up to date 0, failed 0"));
    ok(&["clone", "acme", "initech"]);
    assert!(dir.join("tenants/initech.db").exists());
    assert!(ok(&["status"]).contains("initech  applied 1,2  pending -"));
    ok(&["drop", "initech"]);
    ok(&["rename", "acme", "globex"]);
    assert!(!dir.join("tenants/acme.db").exists());
    assert!(ok(&["status"]).starts_with("globex  applied 1,2  pending -"));
    let refused = run(&["create", "../escape"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    ok(&["drop", "globex"]);
    assert!(!dir.join("tenants/globex.db").exists());
    assert_eq!(ok(&["list"]), "");
}

/// How many rows of `table` in the SQLite file `path` hold `tenant` in `tenant_id`.
fn sqlite_count(path: &std::path::Path, table: &str, tenant: &str) -> i64 {
    runtime().block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?1");
        let count = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(tenant)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        count
    })
}

/// `promote` and `demote` on SQLite say each table's step on stderr, a line each (stderr is
/// no terminal here: no bar), with the rows the tables held; stdout keeps its one line.
#[test]
fn sqlite_promote_and_demote_show_each_table_on_stderr() {
    let dir = TempFolder::new("sqlite").unwrap();
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(migrations.join("1_guards.sql"), SQLITE.guards).unwrap();
    // `duties` sorts before `guards` and references it: guards move first.
    std::fs::write(
        migrations.join("2_rows.sql"),
        "ALTER TABLE guards ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '';\n\
         CREATE TABLE duties (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, \
         guard_id INTEGER NOT NULL REFERENCES guards (id))",
    )
    .unwrap();
    let url = format!("sqlite://{}", dir.join("tenants").display());
    let run = |args: &[&str]| -> Run {
        let run: Run = Command::new(BIN)
            .env("DATABASE_URL", &url)
            .arg("--migrations")
            .arg(&migrations)
            .args(args)
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        run
    };
    run(&["create", "free"]);
    run(&["create", "acme", "--in", "free"]);
    let (free, acme) = (dir.join("tenants/free.db"), dir.join("tenants/acme.db"));
    runtime().block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&free);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO guards (id, name, position, tenant_id) VALUES \
             (1, 'Abu', 'Guard', 'acme'), (2, 'Bea', 'Guard', 'acme'), (3, 'Cai', 'Guard', 'acme'), \
             (4, 'Dov', 'Guard', 'free'); \
             INSERT INTO duties (id, tenant_id, guard_id) VALUES (1, 'acme', 1), (2, 'acme', 3), (3, 'free', 4)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    });
    assert_eq!(
        (
            sqlite_count(&free, "guards", "acme"),
            sqlite_count(&free, "duties", "acme")
        ),
        (3, 2)
    );

    let promoted = run(&["promote", "acme"]);
    assert_eq!(
        promoted.lines(),
        ["promoted acme to a database file of its own (5 rows moved)"]
    );
    assert_eq!(
        promoted.stderr.lines().collect::<Vec<_>>(),
        [
            "promote acme: making its database file",
            "promote acme: copied guards into acme: 3 rows (1/2 tables, 3 rows so far)",
            "promote acme: copied duties into acme: 2 rows (2/2 tables, 5 rows so far)",
            "promote acme: deleted duties from free: 2 rows (1/2 tables, 2 rows so far)",
            "promote acme: deleted guards from free: 3 rows (2/2 tables, 5 rows so far)",
            "promote acme: switching (2 tables, 5 rows moved)",
        ],
        "{promoted:?}"
    );
    assert_eq!(
        (
            sqlite_count(&acme, "guards", "acme"),
            sqlite_count(&acme, "duties", "acme")
        ),
        (3, 2)
    );
    assert_eq!(
        (
            sqlite_count(&free, "guards", "acme"),
            sqlite_count(&free, "duties", "acme")
        ),
        (0, 0)
    );

    let demoted = run(&["demote", "acme", "--into", "free"]);
    assert_eq!(demoted.lines(), ["demoted acme into free (5 rows moved)"]);
    assert_eq!(
        demoted.stderr.lines().collect::<Vec<_>>(),
        [
            "demote acme: copied guards into free: 3 rows (1/2 tables, 3 rows so far)",
            "demote acme: copied duties into free: 2 rows (2/2 tables, 5 rows so far)",
            "demote acme: switching and dropping its database file (2 tables, 5 rows moved)",
        ],
        "{demoted:?}"
    );
    assert!(!acme.exists(), "its file removed");
    assert_eq!(
        (
            sqlite_count(&free, "guards", "acme"),
            sqlite_count(&free, "duties", "acme")
        ),
        (3, 2)
    );
}

/// `CITUS_URL`: the coordinator of a Citus cluster with two workers. Fails, saying how to get
/// one, when unset (`.ci/run` starts one).
fn citus_url() -> String {
    tenancy_testdb::citus_url().unwrap_or_else(|e| panic!("{e}"))
}

/// The `placement` line of `tenant`: its node, `host:port`.
fn placed_on(w: &World, tenant: &str) -> String {
    let run = w.ok(&["placement"]);
    let line = run
        .lines()
        .into_iter()
        .find(|l| l.split_whitespace().next() == Some(tenant))
        .unwrap_or_else(|| panic!("no placement line for {tenant}:\n{run:?}"))
        .to_owned();
    line.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn citus_placement_and_move() {
    let w = World::on(Server::Postgres, citus_url()).with_guards();
    let acme = w.tenant("acme");
    w.create(&acme);
    w.execute(&format!(
        "INSERT INTO \"{acme}\".guards (name, position) VALUES ('Abu', 'Guard'), ('Bea', 'Guard')"
    ));
    let from = placed_on(&w, &acme);
    let nodes: Vec<String> = w.sql(async |conn| {
        sqlx::query_scalar(
            "SELECT nodename || ':' || nodeport FROM pg_dist_node \
             WHERE shouldhaveshards AND groupid <> 0 ORDER BY 1",
        )
        .fetch_all(conn)
        .await
        .unwrap()
    });
    assert!(nodes.contains(&from), "{from} not in {nodes:?}");
    let to = nodes.iter().find(|n| **n != from).unwrap().clone();
    let run = w.ok(&["move", &acme, &to]);
    assert_eq!(run.lines(), [format!("moved {acme} to {to}")]);
    assert_eq!(placed_on(&w, &acme), to);
    let rows: i64 = w.sql(async |conn| {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{acme}\".guards"
        )))
        .fetch_one(conn)
        .await
        .unwrap()
    });
    assert_eq!(rows, 2);
    // And back by logical replication.
    let run = w.ok(&["move", &acme, &from, "--logical"]);
    assert_eq!(run.lines(), [format!("moved {acme} to {from}")]);
    assert_eq!(placed_on(&w, &acme), from);
    // Bad input: a node that is no worker, a malformed node, a tenant that is none.
    let run = w.fails(&["move", &acme, "nowhere.invalid:5432"]);
    assert!(
        run.stderr
            .contains("nowhere.invalid:5432 is not an active worker node"),
        "{run:?}"
    );
    let run = w.run(&["move", &acme, "no-port"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let run = w.fails(&["move", &w.tenant("nobody"), &to]);
    assert!(run.stderr.contains("is not a tenant"), "{run:?}");
}

#[test]
fn citus_distribute_rows() {
    let w = World::on(Server::Postgres, citus_url());
    w.migration(
        "1_guards.sql",
        "CREATE TABLE plans (id int PRIMARY KEY);\n\
         CREATE TABLE guards (id bigserial, tenant_id text NOT NULL, name text NOT NULL, \
         PRIMARY KEY (tenant_id, id))",
    );
    let (free, acme) = (w.tenant("free"), w.tenant("acme"));
    w.create(&free);
    w.ok(&["create", &acme, "--in", &free]);
    w.execute(&format!(
        "INSERT INTO \"{free}\".guards (tenant_id, name) VALUES ('{acme}', 'Abu')"
    ));
    let run = w.ok(&["distribute-rows", &free]);
    assert_eq!(
        run.lines(),
        [format!(
            "distributed {free} by tenant_id: guards (reference tables: plans)"
        )]
    );
    let (method, rows): (String, i64) = w.sql(async |conn| {
        let method = sqlx::query_scalar(
            "SELECT partmethod::text FROM pg_dist_partition WHERE logicalrelid = to_regclass($1)",
        )
        .bind(format!("\"{free}\".guards"))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let rows = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{free}\".guards WHERE tenant_id = '{acme}'"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        (method, rows)
    });
    assert_eq!(
        (method.as_str(), rows),
        ("h", 1),
        "hash-distributed, the row kept"
    );
    // A row-level tenant is no container; a name that is no tenant is refused.
    let run = w.fails(&["distribute-rows", &acme]);
    assert!(run.stderr.contains("is not a tenant"), "{run:?}");
}

#[test]
fn citus_commands_on_plain_postgresql_and_mysql_are_refused() {
    let w = World::new().with_guards();
    let run = w.fails(&["placement"]);
    assert!(
        run.stderr.contains("placement refused") && run.stderr.contains("not a Citus coordinator"),
        "{run:?}"
    );
    let run = run_with_url("mysql://root@127.0.0.1:1/none", &["placement"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("placement needs Citus"), "{run:?}");
    let run = w.fails(&["distribute-rows", &w.tenant("free")]);
    assert!(
        run.stderr.contains("distribute_rows refused")
            && run.stderr.contains("not a Citus coordinator"),
        "{run:?}"
    );
}

/// `args` as `&str`s.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A database made for one test on the test server, dropped when this value is dropped.
struct OtherDatabase {
    admin: String,
    name: String,
    url: String,
}

impl OtherDatabase {
    fn new(w: &World) -> Self {
        let name = tenancy_testdb::unique_name("fleetdb");
        w.execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"));
        let (main, query) = match w.url.split_once('?') {
            Some((m, q)) => (m, format!("?{q}")),
            None => (w.url.as_str(), String::new()),
        };
        let (server, _) = main.rsplit_once('/').unwrap();
        OtherDatabase {
            admin: w.url.clone(),
            url: format!("{server}/{name}{query}"),
            name,
        }
    }
}

impl Drop for OtherDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            runtime().block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            })
        })
        .join();
    }
}

/// The arguments of a command on the fleet of `home` and `away` (`NAME=URL` each).
fn on_fleet(home: &str, away: &str) -> impl Fn(&[&str]) -> Vec<String> {
    let fleet = ["--fleet", home, "--fleet", away].map(str::to_owned);
    move |args| {
        fleet
            .iter()
            .cloned()
            .chain(args.iter().map(|s| s.to_string()))
            .collect()
    }
}

/// Creates tenants `a` and `b` through `fleet` (over `home` and `away`, both empty) and checks
/// that `list` puts `a` at home and `b` away (the fewest tenants first): their names.
fn two_placed(w: &World, fleet: &impl Fn(&[&str]) -> Vec<String>) -> (String, String) {
    let (a, b) = (w.tenant("a"), w.tenant("b"));
    w.ok(&strs(&fleet(&["create", &a])));
    w.ok(&strs(&fleet(&["create", &b])));
    let listed = w.ok(&strs(&fleet(&["list"])));
    let mut expected = vec![format!("{a}\thome"), format!("{b}\taway")];
    expected.sort();
    assert_eq!(listed.lines(), expected);
    (a, b)
}

#[test]
fn a_fleet_creates_lists_and_moves_a_tenant_between_two_databases() {
    let w = World::new().with_guards();
    let other = OtherDatabase::new(&w);
    let home = format!("home={}", w.url);
    let fleet = on_fleet(&home, &format!("away={}", other.url));
    let (a, b) = two_placed(&w, &fleet);
    w.execute(&format!(
        "INSERT INTO \"{a}\".guards (name, position) VALUES ('Abu', 'Guard')"
    ));

    let moved = w.ok(&strs(&fleet(&["move", &a, "--to", "away"])));
    assert_eq!(
        moved.lines()[0],
        format!("moved {a} from home to away: 1 rows in 1 tables (writes held ")
            + moved.lines()[0].rsplit_once("held ").unwrap().1
    );
    assert!(!w.schema_exists(&a), "the home's copy is gone");
    let names: Vec<String> = runtime().block_on(async {
        let mut conn = PgConnection::connect(&other.url).await.unwrap();
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT name FROM \"{a}\".guards")))
            .fetch_all(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(names, ["Abu"]);
    let status = w.ok(&strs(&fleet(&["status"])));
    assert_eq!(status.lines().len(), 2, "{status:?}");

    // A database the fleet does not have; a move without --fleet; a --fleet value that is no
    // NAME=URL (its URL never printed).
    let nowhere = w.fails(&strs(&fleet(&["move", &a, "--to", "elsewhere"])));
    assert!(
        nowhere.stderr.contains("no database named \"elsewhere\""),
        "{nowhere:?}"
    );
    let alone = w.run(&["move", &a, "--to", "away"]);
    assert_eq!(alone.code, Some(2), "{alone:?}");
    assert!(alone.stderr.contains("--fleet NAME=URL"), "{alone:?}");
    let bad = w.run(&["--fleet", &w.url, "list"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(!bad.stderr.contains(&w.url), "{bad:?}");
    // The tenants go with the registry's cleanup: drop them through the fleet.
    w.ok(&strs(&fleet(&["drop", &a])));
    w.ok(&strs(&fleet(&["drop", &b])));
}

#[test]
fn mysql_a_fleet_of_two_servers_places_lists_and_drops_tenants() {
    let w = World::mysql().with_mysql_guards();
    let server = tenancy_testdb::mysql::MysqlServer::start().unwrap_or_else(|e| panic!("{e}"));
    let home = format!("home={}", w.url);
    let fleet = on_fleet(&home, &format!("away={}", server.url()));
    let (a, b) = two_placed(&w, &fleet);
    // Each tenant's database is on its own server, read with plain SQL.
    let databases = |url: &str| -> Vec<String> {
        let url = url.to_owned();
        runtime().block_on(async move {
            let mut conn = MySqlConnection::connect(&url).await.unwrap();
            sqlx::query_scalar("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
                .fetch_all(&mut conn)
                .await
                .unwrap()
        })
    };
    let (at_home, away_there) = (databases(&w.url), databases(server.url()));
    assert!(at_home.contains(&a) && !at_home.contains(&b), "{at_home:?}");
    assert!(
        away_there.contains(&b) && !away_there.contains(&a),
        "{away_there:?}"
    );
    // A move is refused on MySQL, nothing moved; a fleet of two backends is a usage error.
    let refused = w.fails(&strs(&fleet(&["move", &a, "--to", "away"])));
    assert!(refused.stderr.contains("PostgreSQL only"), "{refused:?}");
    assert!(databases(&w.url).contains(&a));
    let pg = format!("pg={}", tenancy_testdb::database_url().unwrap());
    let mixed = w.run(&["--fleet", &home, "--fleet", &pg, "list"]);
    assert_eq!(mixed.code, Some(2), "{mixed:?}");
    assert!(mixed.stderr.contains("two backends"), "{mixed:?}");
    w.ok(&strs(&fleet(&["drop", &a])));
    w.ok(&strs(&fleet(&["drop", &b])));
    assert!(!databases(server.url()).contains(&b));
}
