//! A process killed part-way through moving a SQLite tenant between tiers. SQLite commits each
//! file on its own, so a promote or demote is a sequence of commits; a child process (this
//! test binary, running [`child_moves_until_killed`]) promotes and demotes one tenant of
//! 20,000 rows over and over until the test kills it (`SIGKILL`) after a delay, 24 times with
//! delays from 0 to 529 ms. After each kill, where the tenant resolves holds its rows
//! exactly once, its neighbour's rows are as they were, a write there goes through, and the
//! next child carries on moving from there (recovering what the kill left).

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions};
use sqlx::{Connection, SqliteConnection};
use tenancy::Tenants;
use tenancy_testdb::fixtures::{migration, migrator};

/// The folder a child moves tenants in: set for the child process only.
const CHILD_FOLDER: &str = "TENANCY_KILLED_MID_MOVE_FOLDER";
/// The rows of the tenant that moves, and of its neighbour.
const ROWS: i64 = 20_000;
const NEIGHBOUR_ROWS: i64 = 100;

fn migrations() -> Vec<Migration> {
    vec![migration(
        1,
        MigrationType::Simple,
        "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         tenant_id TEXT NOT NULL DEFAULT '', n INTEGER NOT NULL)",
    )]
}

async fn tenants(folder: &Path) -> Tenants<Sqlite> {
    let registry = tenancy::sqlite::open(folder.to_str().unwrap())
        .await
        .unwrap();
    Tenants::new(registry, migrator(migrations())).unwrap()
}

async fn open(folder: &Path, name: &str) -> SqliteConnection {
    let options = SqliteConnectOptions::new().filename(folder.join(format!("{name}.db")));
    SqliteConnection::connect_with(&options).await.unwrap()
}

/// (rows, distinct `n`, sum of `n`) of `tenant` in file `file`.
async fn rows_of(folder: &Path, file: &str, tenant: &str) -> (i64, i64, i64) {
    let mut conn = open(folder, file).await;
    let found = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT n), COALESCE(SUM(n), 0) FROM items WHERE tenant_id = ?1",
    )
    .bind(tenant)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    found
}

/// Run by [`a_process_killed_while_it_moves_a_sqlite_tenant_leaves_it_whole_where_it_resolves`]
/// as its child process (does nothing otherwise): promotes and demotes tenant `a` until killed.
#[tokio::test]
#[ignore = "the child process of a_process_killed_while_it_moves_a_sqlite_tenant_…"]
async fn child_moves_until_killed() {
    let Ok(folder) = std::env::var(CHILD_FOLDER) else {
        return;
    };
    let db = tenants(Path::new(&folder)).await;
    let container = db.tenant("shared").await.unwrap();
    println!("moving");
    loop {
        let now = db.tenant("a").await.unwrap();
        let moved = match now.is_row_level() {
            true => db.promote("a").await,
            false => db.demote("a", &container).await,
        };
        moved.unwrap_or_else(|e| panic!("moving {now}: {e:?}"));
    }
}

#[tokio::test]
async fn a_process_killed_while_it_moves_a_sqlite_tenant_leaves_it_whole_where_it_resolves() {
    let folder = tenancy_testdb::sqlite::folder("killed").unwrap();
    let db = tenants(&folder).await;
    let container = db.create("shared").await.unwrap();
    db.create_in("a", &container).await.unwrap();
    db.create_in("b", &container).await.unwrap();
    let mut conn = open(&folder, "shared").await;
    for (tenant, rows) in [("a", ROWS), ("b", NEIGHBOUR_ROWS)] {
        sqlx::query(
            "INSERT INTO items (tenant_id, n) WITH RECURSIVE c(x) AS \
             (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x + 1 < ?2) SELECT ?1, x FROM c",
        )
        .bind(tenant)
        .bind(rows)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    drop(db);
    let whole = (ROWS, ROWS, ROWS * (ROWS - 1) / 2);
    let neighbour = (
        NEIGHBOUR_ROWS,
        NEIGHBOUR_ROWS,
        NEIGHBOUR_ROWS * (NEIGHBOUR_ROWS - 1) / 2,
    );

    let (mut promoted, mut row_level) = (0, 0);
    for delay in (0..24).map(|i| i * i) {
        super::kill_child_after(
            "faults::killed::child_moves_until_killed",
            &[(CHILD_FOLDER, folder.to_str().unwrap())],
            Duration::from_millis(delay),
        );

        let db = tenants(&folder).await;
        let now = db.tenant("a").await.unwrap();
        let file = now.container().to_owned();
        match now.is_row_level() {
            true => row_level += 1,
            false => promoted += 1,
        }
        assert_eq!(
            rows_of(&folder, &file, "a").await,
            whole,
            "after {delay} ms: a in {file}"
        );
        assert_eq!(
            rows_of(&folder, "shared", "b").await,
            neighbour,
            "after {delay} ms: b"
        );
        // A write where it resolves goes through (no guard left in its way), and is undone.
        let pool = db.pool_for(&now).await.unwrap();
        let mut conn = pool.sqlx_pool().acquire().await.unwrap();
        sqlx::query("INSERT INTO items (tenant_id, n) VALUES ('a', -1)")
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("after {delay} ms: a write to a in {file}: {e}"));
        sqlx::query("DELETE FROM items WHERE n = -1")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    // The kills fell both sides of a move.
    assert!(
        promoted > 0 && row_level > 0,
        "{promoted} promoted, {row_level} row-level"
    );
}
