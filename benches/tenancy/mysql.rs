//! Workloads 9–12: the MySQL / MariaDB backend (a database per tenant) against the server of
//! `MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`, the one `.ci/run` starts).
//!
//! - 9 `mysql-crud`: generated insert / find / update / delete / filtered query vs hand-written
//!   sqlx with the same SQL text on the same pool. MySQL has no `RETURNING`: the library inserts
//!   (updates) and reads the row back by `LAST_INSERT_ID()` (by key) on the same connection, and
//!   so does the hand-written side.
//! - 10 `mysql-create`: `Tenants<MySql>::create` × N vs a floor: per tenant one multi-statement
//!   text on one connection (`CREATE DATABASE`, `USE`, the migration's DDL, the registry's
//!   tenant row and migration row).
//! - 11 `mysql-noop`: `migrate_all` with nothing pending over 1,000 and 10,000 tenants vs the one
//!   registry query it runs.
//! - 12 `mysql-pending`: `migrate_all` with one pending `ADD COLUMN` over 1,000 tenants vs a
//!   floor: per tenant the `ALTER TABLE` and the bookkeeping row in one text, on 4 connections.
//!
//! Every workload uses a registry database and tenant names of its own, and drops every
//! database it created when it ends (and a `Drop` guard drops what a failed run left).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::types::time::OffsetDateTime;
use sqlx::{AssertSqlSafe, Connection, MySql, SqlSafeStr};
use tenancy::internals as sql;
use tenancy::{MigrateOptions, Outcome, Record, Tenant, TenantModel, Tenants};

use crate::common::*;
use crate::method::{calibrated, compare, Compared, Op, Plan, Rounds, Side};
use crate::report::{Results, Row, Target};

/// The integration tests' `Guard`, in a MySQL database per tenant.
#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards", backend = "mysql")]
pub struct MyGuard {
    #[tenancy(id, generated)]
    pub id: u64,
    #[tenancy(required, length(max = 50))]
    pub name: String,
    #[tenancy(required)]
    pub position: String,
    #[tenancy(range(min = 16, max = 120))]
    pub age: Option<i32>,
    #[tenancy(generated)]
    pub inserted_at: OffsetDateTime,
}

impl MyGuard {
    fn new(name: &str, position: &str) -> Self {
        MyGuard {
            id: 0,
            name: name.into(),
            position: position.into(),
            age: None,
            inserted_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// The same row for hand-written sqlx.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct MyGuardRow {
    pub id: u64,
    pub name: String,
    pub position: String,
    #[allow(dead_code)]
    pub age: Option<i32>,
    #[allow(dead_code)]
    pub inserted_at: OffsetDateTime,
}

/// Version 1 of the tenant migrations: the integration tests' (`tests/integration/mysql.rs`),
/// two tables and a unique key, plus an index on `position` for the filtered query.
const MY_V1: &str = "CREATE TABLE guards (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    position VARCHAR(255) NOT NULL,
    age INT NULL,
    inserted_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY guards_position (position, id)
);
CREATE TABLE badges (code VARCHAR(32) PRIMARY KEY, holder VARCHAR(255) NOT NULL UNIQUE)";

fn migration(version: i64, description: &str, sql: String) -> Migration {
    Migration::new(
        version,
        description.to_owned().into(),
        MigrationType::Simple,
        AssertSqlSafe(sql).into_sql_str(),
        false,
    )
}

/// Version 1, plus `ALTER TABLE guards ADD COLUMN badge{v} VARCHAR(32) NULL` for every
/// version 2..=`upto`.
pub fn migrations_upto(upto: i64) -> Vec<Migration> {
    let mut all = vec![migration(1, "guards", MY_V1.to_owned())];
    for v in 2..=upto {
        all.push(migration(
            v,
            &format!("badge{v}"),
            format!("ALTER TABLE guards ADD COLUMN badge{v} VARCHAR(32) NULL"),
        ));
    }
    all
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal (tenant names and descriptions here are plain ASCII).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The registry row of migration `m` for `tenant`, recorded as finished: what a hand-written
/// tool writes after running it.
fn bookkeeping(registry: &str, tenant: &str, m: &Migration) -> String {
    format!(
        "INSERT INTO {}.`migrations` (tenant, version, description, checksum, success) \
         VALUES ({}, {}, {}, X'{}', TRUE)",
        quote(registry),
        literal(tenant),
        m.version,
        literal(&m.description),
        hex(&m.checksum)
    )
}

/// The floor's text for creating `tenant` (one round trip): its database, the migration's DDL
/// with the tenant as default database, the tenant's registry row and the migration's row.
fn create_text(registry: &str, tenant: &str, m: &Migration) -> String {
    format!(
        "CREATE DATABASE {db} CHARACTER SET utf8mb4;\nUSE {db};\n{ddl};\n\
         INSERT INTO {reg}.`tenants` (name) VALUES ({name});\n{book}",
        db = quote(tenant),
        ddl = m.sql.as_str(),
        reg = quote(registry),
        name = literal(tenant),
        book = bookkeeping(registry, tenant, m),
    )
}

/// The floor's text for applying one `ADD COLUMN` migration to `tenant` (one round trip).
fn alter_text(registry: &str, tenant: &str, m: &Migration) -> String {
    format!(
        "USE {};\n{};\n{}",
        quote(tenant),
        m.sql.as_str(),
        bookkeeping(registry, tenant, m)
    )
}

/// The query `migrate_all` (`MySqlStore::status`) runs, copied from `tenancy-core/src/mysql/
/// store.rs`.
fn status_sql(registry: &str) -> String {
    format!(
        "SELECT t.name, m.version, m.checksum, m.success FROM {reg}.`tenants` t \
         LEFT JOIN {reg}.`migrations` m ON m.tenant = t.name ORDER BY t.name, m.version",
        reg = quote(registry)
    )
}

type StatusRow = (String, Option<i64>, Option<Vec<u8>>, Option<bool>);

/// `MYSQL_URL`, or the machine's MariaDB.
pub fn mysql_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// Databases the run created, dropped by the workload that made them; `Drop` drops what a
/// failed workload left.
struct Created {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Drop for Created {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.names.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        eprintln!("cleanup: dropping {} leftover MySQL databases", names.len());
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = MySqlConnection::connect(&url).await {
                    for name in &names {
                        let sql = format!("DROP DATABASE IF EXISTS {}", quote(name));
                        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
                            eprintln!("cleanup of database {name} failed: {e}");
                        }
                    }
                }
            })
        })
        .join();
    }
}

/// The MySQL workloads' context: a pool of [`POOL_SIZE`], the results, what to drop.
pub struct MyCtx {
    pub options: MySqlConnectOptions,
    pub pool: MySqlPool,
    pub quick: bool,
    pub version: String,
    /// The current workload's rows and notes.
    pub out: Results,
    created: Arc<Created>,
}

impl MyCtx {
    pub async fn new(quick: bool) -> BoxResult<Self> {
        let url = mysql_url();
        let options: MySqlConnectOptions = url.parse()?;
        let pool = MySqlPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options.clone())
            .await
            .map_err(|e| format!("MySQL/MariaDB at {url}: {e}"))?;
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&pool)
            .await?;
        Ok(MyCtx {
            options,
            pool,
            quick,
            version,
            out: Results::default(),
            created: Arc::new(Created {
                url,
                names: Mutex::new(Vec::new()),
            }),
        })
    }

    /// `n` fresh database names sharing one unique prefix, remembered for dropping.
    pub fn names(&self, prefix: &str, n: usize) -> Vec<String> {
        let head = tenancy_testdb::unique_name(prefix);
        let names: Vec<String> = (0..n).map(|i| format!("{head}_{i}")).collect();
        self.track(&names);
        names
    }

    fn track(&self, names: &[String]) {
        self.created
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(names.iter().cloned());
    }

    /// A fresh registry database (created by the library on first use).
    pub fn registry(&self, prefix: &str) -> String {
        self.names(prefix, 1).remove(0)
    }

    /// `n` dedicated connections (not from the pool).
    async fn connections(&self, n: usize) -> BoxResult<Vec<MySqlConnection>> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(MySqlConnection::connect_with(&self.options).await?);
        }
        Ok(conns)
    }

    /// Drops `names` (4 connections at a time) and forgets them.
    async fn drop_databases(&self, names: &[String]) -> BoxResult<()> {
        let texts: Vec<String> = names
            .iter()
            .map(|n| format!("DROP DATABASE IF EXISTS {}", quote(n)))
            .collect();
        let conns = self.connections(POOL_SIZE as usize).await?;
        close_all(run_texts(conns, texts).await?).await;
        let gone: std::collections::HashSet<&String> = names.iter().collect();
        self.created
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|n| !gone.contains(n));
        Ok(())
    }

    /// Drops every database this context still remembers.
    pub async fn drop_all(&self) -> BoxResult<()> {
        let names = self
            .created
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if names.is_empty() {
            return Ok(());
        }
        self.drop_databases(&names).await
    }

    /// A handle on `registry` with `migrations`.
    pub fn tenants(&self, registry: &str, migrations: Vec<Migration>) -> BoxResult<Tenants<MySql>> {
        Ok(
            Tenants::new(self.pool.clone(), Migrator::with_migrations(migrations))?
                .with_registry(registry)?,
        )
    }
}

/// Runs every text once, on the given connections in parallel (one task per connection, each
/// taking the next text); gives the connections back.
async fn run_texts(
    conns: Vec<MySqlConnection>,
    texts: Vec<String>,
) -> BoxResult<Vec<MySqlConnection>> {
    run_lists(conns, texts.into_iter().map(|t| vec![t]).collect()).await
}

/// As [`run_texts`], for lists of texts: a connection takes the next list and sends its texts
/// one round trip each.
async fn run_lists(
    conns: Vec<MySqlConnection>,
    lists: Vec<Vec<String>>,
) -> BoxResult<Vec<MySqlConnection>> {
    let lists = Arc::new(lists);
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for mut conn in conns {
        let (lists, next) = (Arc::clone(&lists), Arc::clone(&next));
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(list) = lists.get(i) else {
                    return Ok::<_, BoxError>(conn);
                };
                for text in list {
                    sqlx::raw_sql(AssertSqlSafe(text.clone()))
                        .execute(&mut conn)
                        .await?;
                }
            }
        });
    }
    let mut back = Vec::new();
    while let Some(r) = set.join_next().await {
        back.push(r??);
    }
    Ok(back)
}

async fn close_all(conns: Vec<MySqlConnection>) {
    for conn in conns {
        let _ = conn.close().await;
    }
}

/// Creates `names` as tenants at version 1 of `registry` fast (the floor's texts on 4
/// connections), and checks with `Tenants::status` that the library sees them up to date.
async fn fleet(ctx: &MyCtx, registry: &str, names: &[String]) -> BoxResult<()> {
    let all = migrations_upto(1);
    let tenants = ctx.tenants(registry, all.clone())?;
    tenants.create(format!("{registry}_probe")).await?; // creates the registry
    tenants.drop(format!("{registry}_probe")).await?;
    let texts = names
        .iter()
        .map(|n| create_text(registry, n, &all[0]))
        .collect();
    let started = Instant::now();
    close_all(run_texts(ctx.connections(POOL_SIZE as usize).await?, texts).await?).await;
    let status = tenants.status().await?;
    if status.len() != names.len() || status.iter().any(|s| s.applied != [1]) {
        return Err(format!(
            "fleet of {}: Tenants::status does not see them up to date",
            names.len()
        )
        .into());
    }
    println!(
        "  (set up {} tenant databases in {:.1} s; Tenants::status sees them up to date)",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 9: CRUD.

/// Insert: the library's `insert` vs `INSERT` + `SELECT … WHERE id = LAST_INSERT_ID()` on the
/// same connection. Each side keeps what it inserted for the delete.
struct Insert<'a> {
    conn: &'a mut MySqlConnection,
    tenant: &'a Tenant,
    insert: &'static str,
    read_back: &'static str,
    records: Vec<Record<MyGuard>>,
    /// The rows the hand-written side got back, as whole rows: each side holds (and drops) as
    /// much as the other.
    rows: Vec<MyGuardRow>,
}

impl Op for Insert<'_> {
    async fn before_triple(&mut self) -> BoxResult<()> {
        begin(self.conn).await
    }

    async fn after_triple(&mut self) -> BoxResult<()> {
        commit(self.conn).await
    }

    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let name = format!("guard {i}");
        match side {
            Side::Library => {
                let record = MyGuard::new(&name, "Guard")
                    .insert(&mut *self.conn, self.tenant)
                    .await?;
                self.records.push(record);
            }
            Side::Hand | Side::Again => {
                sqlx::query(AssertSqlSafe(self.insert))
                    .bind(name)
                    .bind("Guard")
                    .bind(None::<i32>)
                    .execute(&mut *self.conn)
                    .await?;
                let row: Option<MyGuardRow> = sqlx::query_as(AssertSqlSafe(self.read_back))
                    .fetch_optional(&mut *self.conn)
                    .await?;
                self.rows.push(row.ok_or("inserted row not read back")?);
            }
        }
        Ok(())
    }
}

struct Find<'a> {
    conn: &'a mut MySqlConnection,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Find<'_> {
    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let id = 1 + (i % 1000) as u64;
        match side {
            Side::Library => {
                let found = MyGuard::find(&mut *self.conn, self.tenant, id).await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
            Side::Hand | Side::Again => {
                let found: Option<MyGuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind(id)
                    .fetch_optional(&mut *self.conn)
                    .await?;
                assert!(found.is_some());
                std::hint::black_box(found);
            }
        }
        Ok(())
    }
}

/// A full-record update: `UPDATE … WHERE id = ?` then `SELECT … WHERE id = ?` (the library's
/// `Record::update`; the hand-written side the same two statements), each side on 200 rows of
/// its own.
struct Update<'a> {
    conn: &'a mut MySqlConnection,
    tenant: &'a Tenant,
    update: &'static str,
    select: &'static str,
    records: Vec<Record<MyGuard>>,
    /// The rows of the hand-written side and of its A/A twin.
    rows: [Vec<MyGuardRow>; 2],
}

impl Op for Update<'_> {
    async fn before_triple(&mut self) -> BoxResult<()> {
        begin(self.conn).await
    }

    async fn after_triple(&mut self) -> BoxResult<()> {
        commit(self.conn).await
    }

    async fn run(&mut self, side: Side, i: usize) -> BoxResult<()> {
        let age = Some(20 + (i % 60) as i32);
        match side {
            Side::Library => {
                let n = self.records.len();
                let record = &mut self.records[i % n];
                record.age = age;
                record.update(&mut *self.conn, self.tenant).await?;
            }
            Side::Hand | Side::Again => {
                let rows = &mut self.rows[side.index() - 1];
                let n = rows.len();
                let row = &mut rows[i % n];
                sqlx::query(AssertSqlSafe(self.update))
                    .bind(&row.name)
                    .bind(&row.position)
                    .bind(age)
                    .bind(row.id)
                    .execute(&mut *self.conn)
                    .await?;
                let updated: Option<MyGuardRow> = sqlx::query_as(AssertSqlSafe(self.select))
                    .bind(row.id)
                    .fetch_optional(&mut *self.conn)
                    .await?;
                *row = updated.ok_or("row gone")?;
            }
        }
        Ok(())
    }
}

/// Delete by key: each side deletes the rows it inserted (`Record::delete` vs `DELETE … WHERE
/// id = ?`, checking one row was affected).
struct Delete<'a> {
    conn: &'a mut MySqlConnection,
    tenant: &'a Tenant,
    sql: &'static str,
    records: Vec<Record<MyGuard>>,
    /// The rows the hand-written side got back, as whole rows: each side holds (and drops) as
    /// much as the other.
    rows: Vec<MyGuardRow>,
}

impl Op for Delete<'_> {
    async fn before_triple(&mut self) -> BoxResult<()> {
        begin(self.conn).await
    }

    async fn after_triple(&mut self) -> BoxResult<()> {
        commit(self.conn).await
    }

    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        match side {
            Side::Library => {
                let mut record = self.records.pop().ok_or("no row left to delete")?;
                record.delete(&mut *self.conn, self.tenant).await?;
            }
            Side::Hand | Side::Again => {
                let row = self.rows.pop().ok_or("no row left to delete")?;
                let done = sqlx::query(AssertSqlSafe(self.sql))
                    .bind(row.id)
                    .execute(&mut *self.conn)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err("row not deleted".into());
                }
            }
        }
        Ok(())
    }
}

/// `WHERE position = ? ORDER BY id ASC LIMIT ?`, 10 rows back.
struct Filtered<'a> {
    conn: &'a mut MySqlConnection,
    tenant: &'a Tenant,
    sql: &'static str,
}

impl Op for Filtered<'_> {
    async fn run(&mut self, side: Side, _i: usize) -> BoxResult<()> {
        match side {
            Side::Library => {
                let rows = MyGuard::query(self.tenant)
                    .filter(MyGuard::POSITION.eq("Captain"))
                    .order_by(MyGuard::ID.asc())
                    .limit(10)
                    .fetch_all(&mut *self.conn)
                    .await?;
                assert_eq!(rows.len(), 10);
                std::hint::black_box(rows);
            }
            Side::Hand | Side::Again => {
                let rows: Vec<MyGuardRow> = sqlx::query_as(AssertSqlSafe(self.sql))
                    .bind("Captain")
                    .bind(10_i64)
                    .fetch_all(&mut *self.conn)
                    .await?;
                assert_eq!(rows.len(), 10);
                std::hint::black_box(rows);
            }
        }
        Ok(())
    }
}

/// A triple of writes runs in one transaction, committed after it (untimed): the server's
/// flush setting is global (`innodb_flush_log_at_trx_commit`), and a commit per operation
/// waiting for the disk would drown the difference between the sides.
async fn begin(conn: &mut MySqlConnection) -> BoxResult<()> {
    sqlx::raw_sql("BEGIN").execute(conn).await?;
    Ok(())
}

async fn commit(conn: &mut MySqlConnection) -> BoxResult<()> {
    sqlx::raw_sql("COMMIT").execute(conn).await?;
    Ok(())
}

pub async fn crud(ctx: &mut MyCtx) -> BoxResult<()> {
    let registry = ctx.registry("mb_crud");
    let tenants = ctx.tenants(&registry, migrations_upto(1))?;
    let names = ctx.names("mb_crud_t", 1);
    let result = async {
        let tenant = tenants.create(&names[0]).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "INSERT INTO {}.guards (name, position) SELECT CONCAT('guard ', seq), \
             IF(seq % 5 = 0, 'Captain', 'Guard') FROM seq_1_to_1000",
            quote(tenant.as_str())
        )))
        .execute(&ctx.pool)
        .await?;
        crud_measure(ctx, &tenant).await
    }
    .await;
    ctx.drop_all().await?;
    result
}

async fn crud_measure(ctx: &mut MyCtx, tenant: &Tenant) -> BoxResult<()> {
    let mut conn = ctx.pool.acquire().await?;
    let conn = &mut *conn;
    let table = &MyGuard::TABLE;
    let updatable: Vec<usize> = table.updatable_indexes().collect();
    let mut records = Vec::new();
    for id in 1..=200 {
        records.push(
            MyGuard::find(&mut *conn, tenant, id)
                .await?
                .ok_or("seeded row")?,
        );
    }
    let mut rows = [Vec::new(), Vec::new()];
    for (k, rows) in rows.iter_mut().enumerate() {
        *rows = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT * FROM {}.guards WHERE id > ? AND id <= ? + 200 ORDER BY id",
            quote(tenant.as_str())
        )))
        .bind(200 * (k as u64 + 1))
        .bind(200 * (k as u64 + 1))
        .fetch_all(&mut *conn)
        .await?;
    }
    let (budget, quick) = (crate::crud::crud_budget(ctx.quick), ctx.quick);
    println!("  one task, one connection; about {budget:?} of recorded operations each");
    let mut ops: Vec<(&str, Compared)> = Vec::new();
    let mut insert = Insert {
        conn: &mut *conn,
        tenant,
        insert: leak(sql::insert::<MyGuard>(tenant, 1)),
        read_back: leak(
            sql::select_by_pk::<MyGuard>(tenant).replace(" = ?", " = LAST_INSERT_ID()"),
        ),
        records: Vec::new(),
        rows: Vec::new(),
    };
    let insert_plan = Plan::calibrate(&mut insert, budget, quick).await?;
    ops.push((
        "insert + read back by LAST_INSERT_ID()",
        compare(&mut insert, insert_plan).await?,
    ));
    let insert_run = ops[0].1.plan;
    let (inserted, inserted_rows) = (insert.records, insert.rows);
    let mut find = Find {
        conn: &mut *conn,
        tenant,
        sql: leak(sql::select_by_pk::<MyGuard>(tenant)),
    };
    ops.push(("find by id", calibrated(&mut find, budget, quick).await?));
    let mut update = Update {
        conn: &mut *conn,
        tenant,
        update: leak(sql::update::<MyGuard>(tenant, &updatable)),
        select: leak(sql::select_by_pk::<MyGuard>(tenant)),
        records,
        rows,
    };
    ops.push((
        "update + read back by key",
        calibrated(&mut update, budget, quick).await?,
    ));
    let mut delete = Delete {
        conn: &mut *conn,
        tenant,
        sql: leak(sql::delete_by_pk::<MyGuard>(tenant)),
        records: inserted,
        rows: inserted_rows,
    };
    ops.push(("delete by id", compare(&mut delete, insert_run).await?));
    let query_sql = MyGuard::query(tenant)
        .filter(MyGuard::POSITION.eq("Captain"))
        .order_by(MyGuard::ID.asc())
        .limit(10)
        .to_sql();
    let mut filtered = Filtered {
        conn: &mut *conn,
        tenant,
        sql: leak(query_sql),
    };
    ops.push((
        "filtered query",
        calibrated(&mut filtered, budget, quick).await?,
    ));
    for (op, c) in &ops {
        ctx.out.row(c.row(
            format!("9 {op}"),
            "hand-written sqlx, same SQL, same connection",
            Target::AtLeast(0.98),
        ));
    }
    ctx.out.note(crate::crud::plans_note(&ops));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 10: create.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Create {
    Floor,
    /// The floor again: the A/A control.
    FloorAgain,
    Library,
    LibraryConcurrent,
    FloorStatements,
}

const CREATE_VARIANTS: [Create; 5] = [
    Create::Floor,
    Create::FloorAgain,
    Create::Library,
    Create::LibraryConcurrent,
    Create::FloorStatements,
];

/// The floor's statements one round trip each (reference): the floor's text split at its
/// statements.
fn create_statements(registry: &str, tenant: &str, m: &Migration) -> Vec<String> {
    let db = quote(tenant);
    let mut out = vec![
        format!("CREATE DATABASE {db} CHARACTER SET utf8mb4"),
        format!("USE {db}"),
    ];
    out.extend(
        m.sql
            .as_str()
            .split(";\n")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    );
    out.push(format!(
        "INSERT INTO {}.`tenants` (name) VALUES ({})",
        quote(registry),
        literal(tenant)
    ));
    out.push(bookkeeping(registry, tenant, m));
    out
}

pub async fn create(ctx: &mut MyCtx) -> BoxResult<()> {
    let n = if ctx.quick { 5 } else { 1000 };
    let registry = ctx.registry("mb_create");
    let result = create_measure(ctx, &registry, n).await;
    ctx.drop_all().await?;
    result
}

async fn create_measure(ctx: &mut MyCtx, registry: &str, n: usize) -> BoxResult<()> {
    let all = migrations_upto(1);
    let m = all[0].clone();
    let tenants = ctx.tenants(registry, all)?;
    tenants.create(format!("{registry}_probe")).await?; // creates the registry
    tenants.drop(format!("{registry}_probe")).await?;
    let rounds = if n >= 100 { 20 } else { 1 };
    let per_round = n / rounds;
    println!(
        "  {rounds} rounds; each round every variant creates {per_round} fresh tenants (order \
         rotating), which are dropped before the next variant"
    );
    let mut floor_conn = MySqlConnection::connect_with(&ctx.options).await?;
    let mut times = Rounds::new(CREATE_VARIANTS.len());
    for round in 0..rounds {
        for k in 0..CREATE_VARIANTS.len() {
            let vi = (k + round) % CREATE_VARIANTS.len();
            let names = ctx.names("mc", per_round);
            let texts: Vec<String> = names.iter().map(|t| create_text(registry, t, &m)).collect();
            let statements: Vec<Vec<String>> = names
                .iter()
                .map(|t| create_statements(registry, t, &m))
                .collect();
            let start = Instant::now();
            match CREATE_VARIANTS[vi] {
                Create::Floor | Create::FloorAgain => {
                    for text in texts {
                        sqlx::raw_sql(AssertSqlSafe(text))
                            .execute(&mut floor_conn)
                            .await?;
                    }
                }
                Create::FloorStatements => {
                    for list in statements {
                        for s in list {
                            sqlx::raw_sql(AssertSqlSafe(s))
                                .execute(&mut floor_conn)
                                .await?;
                        }
                    }
                }
                Create::Library => {
                    for name in &names {
                        tenants.create(name).await?;
                    }
                }
                Create::LibraryConcurrent => {
                    let t = tenants.clone();
                    each_concurrent(&names, POOL_SIZE as usize, move |name| {
                        let t = t.clone();
                        async move {
                            t.create(name).await?;
                            Ok(())
                        }
                    })
                    .await?;
                }
            }
            times.push(vi, start.elapsed().as_secs_f64());
            // Every variant registered its tenants at version 1.
            let registered = tenants.status().await?;
            if registered.len() != per_round || registered.iter().any(|s| s.applied != [1]) {
                return Err(format!(
                    "{:?}: {} of {per_round} tenants registered at version 1",
                    CREATE_VARIANTS[vi],
                    registered.len()
                )
                .into());
            }
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DELETE FROM {reg}.`migrations`; DELETE FROM {reg}.`tenants`",
                reg = quote(registry)
            )))
            .execute(&ctx.pool)
            .await?;
            ctx.drop_databases(&names).await?;
        }
    }
    let _ = floor_conn.close().await;
    let at = |v: Create| CREATE_VARIANTS.iter().position(|x| *x == v).unwrap();
    let rows = [
        (
            Create::Library,
            format!("10 create {n} tenants: Tenants<MySql>::create, sequential"),
            Target::AtMost(1.5),
        ),
        (
            Create::LibraryConcurrent,
            format!("10b create {n} tenants: Tenants<MySql>::create, {POOL_SIZE} concurrent"),
            Target::AtMost(1.5),
        ),
        (
            Create::FloorStatements,
            format!(
                "10c create {n} tenants: the floor's statements one round trip each (reference)"
            ),
            Target::None,
        ),
    ];
    for (v, label, target) in rows {
        ctx.out.row(times.row(
            label,
            at(v),
            at(Create::Floor),
            Some(at(Create::FloorAgain)),
            "floor: one text per tenant, one connection",
            target,
        ));
    }
    ctx.out.note(format!(
        "{rounds} rounds of {per_round} tenants per variant; ratios are medians of the per-round ratios"
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 11: no-op migrate_all.

pub async fn noop(ctx: &mut MyCtx) -> BoxResult<()> {
    let result = noop_measure(ctx).await;
    ctx.drop_all().await?;
    result
}

async fn noop_measure(ctx: &mut MyCtx) -> BoxResult<()> {
    let (sizes, runs): ([usize; 2], usize) = if ctx.quick {
        ([5, 10], 3)
    } else {
        ([1000, 10_000], 9)
    };
    let all = migrations_upto(1);
    let m = all[0].clone();
    for (k, n) in sizes.into_iter().enumerate() {
        let registry = ctx.registry("mb_noop");
        // The smaller fleet has real databases; the larger registry rows only (see BENCHMARKS.md:
        // a no-op `migrate_all` reads the registry and touches no tenant database).
        let real = k == 0;
        let names: Vec<String> = if real {
            let names = ctx.names("mn", n);
            fleet(ctx, &registry, &names).await?;
            names
        } else {
            let head = tenancy_testdb::unique_name("mn");
            let names: Vec<String> = (0..n).map(|i| format!("{head}_{i}")).collect();
            let tenants = ctx.tenants(&registry, all.clone())?;
            tenants.create(format!("{registry}_probe")).await?; // creates the registry
            tenants.drop(format!("{registry}_probe")).await?;
            let reg = quote(&registry);
            sqlx::raw_sql(AssertSqlSafe(format!(
                "INSERT INTO {reg}.`tenants` (name) SELECT CONCAT({head}, '_', seq - 1) \
                 FROM seq_1_to_{n};\n\
                 INSERT INTO {reg}.`migrations` (tenant, version, description, checksum, success) \
                 SELECT name, {v}, {d}, X'{c}', TRUE FROM {reg}.`tenants`",
                head = literal(&head),
                v = m.version,
                d = literal(&m.description),
                c = hex(&m.checksum),
            )))
            .execute(&ctx.pool)
            .await?;
            names
        };
        let tenants = ctx.tenants(&registry, all.clone())?;
        let status = tenants.status().await?;
        if status.len() != n || status.iter().any(|s| !s.pending.is_empty()) {
            return Err(format!("no-op fleet of {n}: not all up to date").into());
        }
        let query = status_sql(&registry);
        let (mut lib, mut raw) = (Vec::new(), Vec::new());
        for run in 0..runs {
            for side in [run % 2, 1 - run % 2] {
                let start = Instant::now();
                if side == 0 {
                    let report = tenants.migrate_all(MigrateOptions::default()).await?;
                    lib.push(start.elapsed().as_secs_f64());
                    if report.up_to_date() != n || !report.is_success() {
                        return Err(
                            format!("no-op migrate_all over {n}: not all up to date").into()
                        );
                    }
                } else {
                    let rows: Vec<StatusRow> = sqlx::query_as(AssertSqlSafe(query.clone()))
                        .fetch_all(&ctx.pool)
                        .await?;
                    raw.push(start.elapsed().as_secs_f64());
                    if rows.len() != n {
                        return Err("registry query disagrees".into());
                    }
                }
            }
        }
        let spread = lib
            .iter()
            .map(|s| fmt_secs(*s))
            .collect::<Vec<_>>()
            .join(", ");
        let (lib, raw) = (median(&mut lib), median(&mut raw));
        let what = if real {
            "tenant databases"
        } else {
            "tenants (registry rows only)"
        };
        ctx.out.row(
            Row::new(
                format!("11 migrate_all, nothing pending, {n} {what} (median of {runs})"),
                fmt_secs(lib),
                format!("{} (its registry query alone)", fmt_secs(raw)),
                Some(lib / raw),
                Target::Under(if n <= 1000 { 0.5 } else { 3.0 }, "s"),
            )
            .value(lib),
        );
        ctx.out
            .note(format!("{n} tenants, migrate_all runs: {spread}"));
        if real {
            ctx.drop_databases(&names).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 12: one pending ADD COLUMN.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pending {
    /// ALTER + one bookkeeping INSERT (success = TRUE), one text per tenant.
    Floor,
    /// The floor again, on fleets of its own: the A/A control.
    FloorAgain,
    /// The library's bookkeeping (INSERT success = FALSE, ALTER, UPDATE success = TRUE), one
    /// text per tenant: the floor plus one commit.
    FloorFlag,
    /// The statements the library sends after its lock (registered + database check, applied
    /// rows, USE, INSERT FALSE, ALTER, UPDATE TRUE), one round trip each, on open connections:
    /// the library without its connect, session settings and GET_LOCK / RELEASE_LOCK.
    Statements,
    Library,
}

const PENDING_VARIANTS: [Pending; 5] = [
    Pending::Floor,
    Pending::FloorAgain,
    Pending::FloorFlag,
    Pending::Statements,
    Pending::Library,
];

/// The library's bookkeeping around `m` in `tenant`, one statement per element.
fn flagged(registry: &str, tenant: &str, m: &Migration) -> Vec<String> {
    let reg = quote(registry);
    vec![
        format!("USE {}", quote(tenant)),
        format!(
            "INSERT INTO {reg}.`migrations` (tenant, version, description, checksum, success) \
             VALUES ({}, {}, {}, X'{}', FALSE)",
            literal(tenant),
            m.version,
            literal(&m.description),
            hex(&m.checksum)
        ),
        m.sql.as_str().to_owned(),
        format!(
            "UPDATE {reg}.`migrations` SET success = TRUE, execution_ms = 1 \
             WHERE tenant = {} AND version = {}",
            literal(tenant),
            m.version
        ),
    ]
}

/// What `Pending::Statements` sends for `tenant`: the store's checks, then [`flagged`].
fn library_statements(registry: &str, tenant: &str, m: &Migration) -> Vec<String> {
    let reg = quote(registry);
    let name = literal(tenant);
    let mut out = vec![
        format!(
            "SELECT (SELECT COUNT(*) FROM {reg}.`tenants` WHERE name = {name}), \
             (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {name})"
        ),
        format!(
            "SELECT version, checksum, success FROM {reg}.`migrations` WHERE tenant = {name} \
             ORDER BY version"
        ),
    ];
    out.extend(flagged(registry, tenant, m));
    out
}

pub async fn pending(ctx: &mut MyCtx) -> BoxResult<()> {
    let result = pending_measure(ctx).await;
    ctx.drop_all().await?;
    result
}

async fn pending_measure(ctx: &mut MyCtx) -> BoxResult<()> {
    let n = if ctx.quick { 5 } else { 1000 };
    let rounds = if ctx.quick { 1 } else { 5 };
    let mut fleets = Vec::new();
    for _ in PENDING_VARIANTS {
        let registry = ctx.registry("mb_pend");
        let names = ctx.names("mp", n);
        fleet(ctx, &registry, &names).await?;
        fleets.push((registry, names));
    }
    println!(
        "  {rounds} rounds; each adds one pending ADD COLUMN that every variant applies to its \
         own {n} tenants (order rotating)"
    );
    let mut times = Rounds::new(PENDING_VARIANTS.len());
    for round in 0..rounds {
        let version = 2 + round as i64;
        let all = migrations_upto(version);
        let last = all.last().expect("migrations").clone();
        for k in 0..PENDING_VARIANTS.len() {
            let vi = (k + round) % PENDING_VARIANTS.len();
            let (registry, names) = &fleets[vi];
            match PENDING_VARIANTS[vi] {
                v @ (Pending::Floor
                | Pending::FloorAgain
                | Pending::FloorFlag
                | Pending::Statements) => {
                    let lists: Vec<Vec<String>> = names
                        .iter()
                        .map(|t| match v {
                            Pending::Floor | Pending::FloorAgain => {
                                vec![alter_text(registry, t, &last)]
                            }
                            Pending::FloorFlag => vec![flagged(registry, t, &last).join(";\n")],
                            _ => library_statements(registry, t, &last),
                        })
                        .collect();
                    let conns = ctx.connections(POOL_SIZE as usize).await?;
                    let start = Instant::now();
                    let conns = run_lists(conns, lists).await?;
                    times.push(vi, start.elapsed().as_secs_f64());
                    close_all(conns).await;
                }
                Pending::Library => {
                    let start = Instant::now();
                    let handle = ctx.tenants(registry, all.clone())?;
                    let report = handle.migrate_all(MigrateOptions::default()).await?;
                    times.push(vi, start.elapsed().as_secs_f64());
                    let migrated = report
                        .tenants
                        .iter()
                        .filter(
                            |t| matches!(&t.result, Ok(Outcome::Migrated(v)) if v == &[version]),
                        )
                        .count();
                    if migrated != n {
                        let first = report.failed().next().map(|(t, e)| format!("{t}: {e}"));
                        return Err(format!("migrate_all migrated {migrated}; {first:?}").into());
                    }
                }
            }
        }
    }
    // Both fleets are now at the last version, as the library sees them.
    for (registry, _) in &fleets {
        let status = ctx
            .tenants(registry, migrations_upto(1 + rounds as i64))?
            .status()
            .await?;
        if status.len() != n || status.iter().any(|s| !s.pending.is_empty()) {
            return Err(format!("fleet {registry}: not every tenant at the last version").into());
        }
    }
    let at = |v: Pending| PENDING_VARIANTS.iter().position(|x| *x == v).unwrap();
    let rows = [
        (
            Pending::Library,
            format!("12 migrate_all, 1 pending ADD COLUMN, {n} tenants (concurrency {POOL_SIZE})"),
            Target::AtMost(2.0),
        ),
        (
            Pending::FloorFlag,
            format!("12b the floor with the library's FALSE-then-TRUE bookkeeping (reference), {n} tenants"),
            Target::None,
        ),
        (
            Pending::Statements,
            format!("12c the library's statements after its lock, one round trip each (reference), {n} tenants"),
            Target::None,
        ),
    ];
    for (v, label, target) in rows {
        ctx.out.row(times.row(
            label,
            at(v),
            at(Pending::Floor),
            Some(at(Pending::FloorAgain)),
            &format!(
                "floor: ALTER + bookkeeping INSERT, one text per tenant, {POOL_SIZE} connections"
            ),
            target,
        ));
    }
    ctx.out.note(format!(
        "{rounds} rounds; library per round: {}",
        times.each(at(Pending::Library))
    ));
    overheads(ctx, n).await
}

/// Where a lifecycle operation's fixed cost goes: `n` times, on `POOL_SIZE` tasks, (a) a
/// dedicated connection opened, the lock timeouts set, closed (what every `migrate` does
/// besides its statements), and (b) `GET_LOCK` + `RELEASE_LOCK` on open connections.
async fn overheads(ctx: &mut MyCtx, n: usize) -> BoxResult<()> {
    let workers = POOL_SIZE as usize;
    let names: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let options = Arc::new(ctx.options.clone());
    let start = Instant::now();
    each_concurrent(&names, workers, move |_| {
        let options = Arc::clone(&options);
        async move {
            let mut conn = MySqlConnection::connect_with(&*options).await?;
            sqlx::raw_sql(
                "SET SESSION lock_wait_timeout = 31536000, \
                 SESSION innodb_lock_wait_timeout = 31536000",
            )
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            Ok(())
        }
    })
    .await?;
    let connect = start.elapsed().as_secs_f64();
    let texts: Vec<String> = (0..n)
        .map(|i| format!("SELECT GET_LOCK('tenancy:bench:{i}', 10)"))
        .collect();
    let releases: Vec<String> = (0..n)
        .map(|i| format!("SELECT RELEASE_LOCK('tenancy:bench:{i}')"))
        .collect();
    // Each text is sent alone, like the store's; the lock and its release are on one
    // connection because each worker takes both texts of one index in turn.
    let paired: Vec<String> = texts
        .into_iter()
        .zip(releases)
        .flat_map(|(a, b)| [a, b])
        .collect();
    let conns = ctx.connections(1).await?;
    let start = Instant::now();
    let conns = run_texts(conns, paired).await?;
    let lock_one_conn = start.elapsed().as_secs_f64();
    close_all(conns).await;
    ctx.out.note(format!(
        "fixed costs for {n} tenants: connect + SET lock timeouts + close on {workers} tasks \
         {}; GET_LOCK + RELEASE_LOCK round trips on one connection {} ({:.0} us per pair)",
        fmt_secs(connect),
        fmt_secs(lock_one_conn),
        lock_one_conn * 1e6 / n as f64
    ));
    Ok(())
}
