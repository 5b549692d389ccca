//! Per-tenant migrations, PostgreSQL only: aborted and overlapping runs, `rollback_all`, that no
//! connection goes back to the pool changed, and the statement batches' internals. The rest runs
//! on every backend (`backends/shared/migrations.rs`).

use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType};
use tenancy::{MigrateOptions, Outcome, Tenant};

use crate::lifecycle_support::{
    has_column, has_table, migration, tenants_at_v1, v1, v2, HeldLock, Lifecycle, V1_GUARDS,
    V2_BADGE_UP,
};
use crate::support::{pool, pool_with};

/// Migration 2 for `tenants_at_v1`: creates `first_half` and `second_half`, and between them
/// waits for `lock` in tenant `wait_in` only.
fn halves_waiting_in(wait_in: &Tenant, lock: &HeldLock) -> Migration {
    migration(
        2,
        MigrationType::Simple,
        &format!(
            "CREATE TABLE first_half (id int); \
             SELECT pg_advisory_xact_lock({}) WHERE current_schema() = '{}'; \
             CREATE TABLE second_half (id int)",
            lock.key,
            wait_in.as_str()
        ),
    )
}

/// How many of `tenants` have the committed `second_half` table.
async fn count_with_second_half(pool: &sqlx::PgPool, tenants: &[Tenant]) -> usize {
    let mut n = 0;
    for t in tenants {
        n += usize::from(has_table(pool, t.as_str(), "second_half").await);
    }
    n
}

#[tokio::test]
async fn an_aborted_migrate_all_converges_on_rerun_with_no_half_migrated_tenant() {
    let pool = pool().await;
    let (l, created) = tenants_at_v1(&pool, 6).await;
    // The run goes through the tenants in name order, one at a time; the last one's migration
    // waits for a lock this test holds, so the run is provably in flight, past the others.
    let mut lock = HeldLock::take().await;
    let mut slow = v1();
    slow.push(halves_waiting_in(created.last().unwrap(), &lock));
    let newer = l.with_migrations(&pool, slow);
    let migrated_while_running = tokio::select! {
        report = newer.migrate_all(MigrateOptions::default().concurrency(1)) => {
            panic!("the run ended before it was aborted: success {}", report.unwrap().is_success())
        }
        n = async {
            lock.wait_for_a_waiter(&pool).await;
            count_with_second_half(&pool, &created).await
        } => n,
    };
    // Leaving the select dropped the run's future part-way through.
    assert!(
        0 < migrated_while_running && migrated_while_running < created.len(),
        "{migrated_while_running} of {} migrated when the run was dropped",
        created.len()
    );
    lock.release().await;
    // Wait for the interrupted tenant's transaction to end: rolled back or, as one whole
    // batch the server already had, committed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE query LIKE '%first_half%' AND pid <> pg_backend_pid() AND state <> 'idle'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if running == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the aborted run never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut migrated = 0;
    for t in &created {
        let first = has_table(&pool, t.as_str(), "first_half").await;
        let second = has_table(&pool, t.as_str(), "second_half").await;
        assert_eq!(first, second, "tenant {t} is half-migrated");
        migrated += usize::from(first);
    }
    assert!(
        migrated == migrated_while_running || migrated == migrated_while_running + 1,
        "{migrated} migrated, {migrated_while_running} before the drop"
    );
    let rerun = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert!(rerun.is_success());
    assert_eq!(rerun.changed().count(), created.len() - migrated);
    for t in &created {
        assert!(has_table(&pool, t.as_str(), "second_half").await);
    }
}

/// A pool whose sessions carry `application_name`, so pg_stat_activity tells them apart.
async fn named_pool(application_name: &str) -> sqlx::PgPool {
    let options = crate::support::database_url()
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .application_name(application_name);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap()
}

/// How many sessions named `application_name` wait for a lock.
async fn waiting_for_a_lock(pool: &sqlx::PgPool, application_name: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND wait_event_type = 'Lock'",
    )
    .bind(application_name)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_overlapping_runs_apply_each_migration_once() {
    let (name_a, name_b) = (
        tenancy_testdb::unique_name("run_a"),
        tenancy_testdb::unique_name("run_b"),
    );
    let (pool_a, pool_b) = (named_pool(&name_a).await, named_pool(&name_b).await);
    let (l, created) = tenants_at_v1(&pool_a, 8).await;
    // Migration 2 waits for a lock the test holds, so neither run can finish before both
    // are seen waiting (for it, or for a tenant's lock the other run holds).
    let mut lock = HeldLock::take().await;
    let mut held = v1();
    held.push(migration(
        2,
        MigrationType::Simple,
        &format!(
            "SELECT pg_advisory_xact_lock_shared({}); {V2_BADGE_UP}",
            lock.key
        ),
    ));
    let a = l.with_migrations(&pool_a, held.clone());
    let b = l.with_migrations(&pool_b, held);
    let observer = pool().await; // the runs may take every connection of their pools
    let watch = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while waiting_for_a_lock(&observer, &name_a).await == 0
            || waiting_for_a_lock(&observer, &name_b).await == 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the two runs were never in flight together"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lock.release().await;
    };
    let (ra, rb, ()) = tokio::join!(
        a.migrate_all(MigrateOptions::default()),
        b.migrate_all(MigrateOptions::default()),
        watch
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.is_success() && rb.is_success());
    // Every tenant was migrated by exactly one of the two runs.
    assert_eq!(ra.changed().count() + rb.changed().count(), created.len());
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".migrations WHERE version = 2",
        l.registry
    )))
    .fetch_one(&pool_a)
    .await
    .unwrap();
    assert_eq!(rows as usize, created.len());
    for t in &created {
        assert!(has_column(&pool_a, t.as_str(), "guards", "badge").await);
    }
}

/// What a pooled connection carries to its next borrower: every setting in `pg_settings` (all
/// of them, not only the ones the library restores), and the backend's pid (the same
/// connection?).
type SessionState = (std::collections::BTreeMap<String, String>, i32);

async fn session_state(pool: &sqlx::PgPool) -> SessionState {
    // The pool has one connection: every statement runs on it. PL/pgSQL is loaded first (the
    // registry's functions load it), so its settings are there before as after.
    sqlx::raw_sql("DO $$ BEGIN END $$")
        .execute(pool)
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap();
    let settings: Vec<(String, String)> =
        sqlx::query_as("SELECT name, coalesce(setting, '') FROM pg_settings")
            .fetch_all(pool)
            .await
            .unwrap();
    (settings.into_iter().collect(), pid)
}

/// The connection of `pool` is the one of `before`, with every setting as it was.
#[track_caller]
fn assert_same_session(now: SessionState, before: &SessionState, after: &str) {
    assert_eq!(now.1, before.1, "after {after}: another connection");
    let changed: Vec<String> = before
        .0
        .iter()
        .filter(|(name, value)| now.0.get(*name) != Some(value))
        .map(|(name, value)| format!("{name}: {value:?} -> {:?}", now.0.get(name)))
        .chain(
            now.0
                .keys()
                .filter(|name| !before.0.contains_key(*name))
                .map(|name| format!("{name}: new")),
        )
        .collect();
    assert!(
        changed.is_empty(),
        "after {after}, settings left changed on the connection:\n{}",
        changed.join("\n")
    );
}

/// A migration step that records, in table `probe_<n>`, whether it ran in the same message as
/// the start of its transaction: true in a one-round-trip batch, false on the
/// statement-at-a-time path (whose `BEGIN` is a message of its own).
fn probe(n: u32) -> String {
    format!(
        "CREATE TABLE probe_{n} AS SELECT statement_timestamp() = transaction_timestamp() AS batched"
    )
}

async fn batched(pool: &sqlx::PgPool, tenant: &Tenant, n: u32) -> bool {
    let sql = format!("SELECT batched FROM {}.probe_{n}", tenant.quoted());
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Session-level `SET`s of the settings README says are put back (all but `role`, which
/// needs a role to switch to, and `client_encoding`, which sqlx needs to stay UTF8), each to
/// a value other than the connection's.
const SESSION_SETS: &str = "SET search_path TO public; SET statement_timeout = '1234s'; \
    SET lock_timeout = '3s'; SET idle_in_transaction_session_timeout = '1h'; \
    SET idle_session_timeout = '2h'; SET synchronous_commit = local; SET work_mem = '7MB'; \
    SET maintenance_work_mem = '77MB'; SET client_min_messages = error; \
    SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'; \
    SET extra_float_digits = 2; SET bytea_output = 'escape'; \
    SET standard_conforming_strings = off; SET check_function_bodies = off; \
    SET default_transaction_isolation = 'serializable'; SET default_transaction_read_only = on; \
    SET row_security = off; SET default_tablespace = 'pg_default'; \
    SET session_replication_role = replica";

#[tokio::test]
async fn migrations_and_hooks_leave_the_session_as_they_found_it() {
    // One connection: whatever create and migrate leave on it, the next borrower gets.
    let pool = pool_with(1).await;
    let before = session_state(&pool).await;
    let l = Lifecycle::new(
        &pool,
        vec![migration(
            1,
            MigrationType::Simple,
            &format!("{V1_GUARDS}; {}", probe(1)),
        )],
    )
    .await;
    let t = l
        .tenants
        .create(tenancy_testdb::unique_name("sess"))
        .await
        .unwrap();
    assert!(
        batched(&pool, &t, 1).await,
        "create did not run as one batch"
    );
    assert_same_session(session_state(&pool).await, &before, "create");

    // Migrations that change the session itself (plain SET, not SET LOCAL): the batch puts
    // every one of these settings back in the same transaction, so the same connection is
    // reused, clean.
    let with_sets = |down: bool| {
        let mut all = vec![migration(
            1,
            MigrationType::Simple,
            &format!("{V1_GUARDS}; {}", probe(1)),
        )];
        all.push(migration(
            2,
            MigrationType::ReversibleUp,
            &format!("{}; {SESSION_SETS}", probe(2)),
        ));
        if down {
            all.push(migration(
                2,
                MigrationType::ReversibleDown,
                &format!("DROP TABLE probe_2; {}; {SESSION_SETS}", probe(3)),
            ));
        }
        all
    };
    let newer = l.with_migrations(&pool, with_sets(true));
    assert_eq!(
        newer.migrate(t.as_str()).await.unwrap(),
        Outcome::Migrated(vec![2])
    );
    assert!(
        batched(&pool, &t, 2).await,
        "migrate did not run as one batch"
    );
    assert_same_session(session_state(&pool).await, &before, "migrate");

    // Rollback runs a statement at a time (the probe tells the paths apart) and restores the
    // same settings.
    assert_eq!(
        newer.rollback(t.as_str(), 1).await.unwrap(),
        Outcome::RolledBack(vec![2])
    );
    assert!(
        !batched(&pool, &t, 3).await,
        "the probe cannot tell the paths apart"
    );
    assert_same_session(session_state(&pool).await, &before, "rollback");

    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert_eq!(report.changed().count(), 1);
    assert_same_session(session_state(&pool).await, &before, "migrate_all");

    // A create hook doing the same: restored too, connection reused.
    l.tenants
        .create_with(
            tenancy_testdb::unique_name("hook"),
            Box::new(|conn, _tenant| {
                Box::pin(async move {
                    sqlx::raw_sql(SESSION_SETS).execute(conn).await?;
                    Ok(())
                })
            }),
        )
        .await
        .unwrap();
    assert_same_session(session_state(&pool).await, &before, "a create hook");
}

fn ups(all: &[Migration]) -> Vec<&Migration> {
    all.iter()
        .filter(|m| m.migration_type.is_up_migration())
        .collect()
}

async fn sqlstate_of(pool: &sqlx::PgPool, batch: String) -> Option<String> {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(batch))
        .execute(pool)
        .await
    {
        Ok(_) => None,
        Err(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
        Err(other) => panic!("not a database error: {other}"),
    }
}

#[tokio::test]
async fn a_migration_batch_applies_only_to_the_state_it_was_built_from() {
    use tenancy::internals::postgres_lifecycle::{migrate_batch, CHANGED_SINCE_READ, WRONG_SCHEMA};
    let pool = pool().await;
    let (l, created) = tenants_at_v1(&pool, 2).await;
    let registry = Tenant::new(&l.registry).unwrap();
    let all = v2();
    let ups = ups(&all);
    let t = &created[0];

    // Built from a stale read (v1 not applied yet): refused, nothing runs.
    let stale = migrate_batch(&registry, t, &[], &ups, &Default::default());
    assert_eq!(
        sqlstate_of(&pool, stale).await.as_deref(),
        Some(CHANGED_SINCE_READ)
    );
    assert!(!has_column(&pool, t.as_str(), "guards", "badge").await);

    // Built as if v2 were applied (e.g. read just before another process rolled it back):
    // refused too.
    let ahead = migrate_batch(&registry, t, &[1, 2], &[], &Default::default());
    assert_eq!(
        sqlstate_of(&pool, ahead).await.as_deref(),
        Some(CHANGED_SINCE_READ)
    );

    // For a name that is not a tenant: refused.
    let stranger = Tenant::new(tenancy_testdb::unique_name("nobody")).unwrap();
    let batch = migrate_batch(&registry, &stranger, &[1], &ups[1..], &Default::default());
    assert_eq!(
        sqlstate_of(&pool, batch).await.as_deref(),
        Some(CHANGED_SINCE_READ)
    );

    // Built from the current state: applied and recorded, timed on the server.
    let batch = migrate_batch(&registry, t, &[1], &ups[1..], &Default::default());
    assert_eq!(sqlstate_of(&pool, batch).await, None);
    assert!(has_column(&pool, t.as_str(), "guards", "badge").await);
    let (description, checksum, ms): (String, Vec<u8>, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT description, checksum, execution_ms FROM {}.migrations \
             WHERE tenant = $1 AND version = 2",
            registry.quoted()
        )))
        .bind(t.as_str())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (description.as_str(), &checksum[..]),
        ("v2", &ups[1].checksum[..])
    );
    assert!(ms >= 0);

    // A tenant whose schema went missing behind the registry's back: the batch refuses to run
    // the migration anywhere else on the search_path.
    let gone = &created[1];
    let drop = format!("DROP SCHEMA {} CASCADE", gone.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
    let batch = migrate_batch(&registry, gone, &[1], &ups[1..], &Default::default());
    assert_eq!(
        sqlstate_of(&pool, batch).await.as_deref(),
        Some(WRONG_SCHEMA)
    );
}

#[tokio::test]
async fn a_create_batch_creates_once() {
    use tenancy::internals::postgres_lifecycle::create_batch;
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    l.tenants.list().await.unwrap(); // creates the registry
    let registry = Tenant::new(&l.registry).unwrap();
    let t = Tenant::new(tenancy_testdb::unique_name("batch")).unwrap();
    let all = v1();
    let batch = create_batch(&registry, &t, &ups(&all), &Default::default());
    assert_eq!(sqlstate_of(&pool, batch.clone()).await, None);
    assert!(has_table(&pool, t.as_str(), "guards").await);
    let status = l.tenants.status().await.unwrap();
    assert_eq!((&status[0].tenant, &status[0].applied[..]), (&t, &[1][..]));
    // Again: the name is taken, and the failed batch leaves nothing of itself.
    assert_eq!(sqlstate_of(&pool, batch).await.as_deref(), Some("23505"));
    assert_eq!(l.tenants.status().await.unwrap(), status);
}

#[tokio::test]
async fn bookkeeping_keeps_descriptions_exactly() {
    let pool = pool().await;
    let described = |version, description: &str, sql: &str| {
        Migration::new(
            version,
            description.to_owned().into(),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql.to_owned())),
            false,
        )
    };
    let first = described(1, "guards: it's \\ 'quoted' — ünïcode", V1_GUARDS);
    let second = described(
        2,
        "badge $tenancy$ \"x\"",
        "ALTER TABLE guards ADD badge text",
    );
    let l = Lifecycle::new(&pool, vec![first.clone()]).await;
    let t = l
        .tenants
        .create(tenancy_testdb::unique_name("desc"))
        .await
        .unwrap();
    let newer = l.with_migrations(&pool, vec![first.clone(), second.clone()]);
    assert_eq!(
        newer.migrate(t.as_str()).await.unwrap(),
        Outcome::Migrated(vec![2])
    );
    let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, description, checksum FROM \"{}\".migrations WHERE tenant = $1 \
         ORDER BY version",
        l.registry
    )))
    .bind(t.as_str())
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(i64, String, Vec<u8>)> = [first, second]
        .iter()
        .map(|m| (m.version, m.description.to_string(), m.checksum.to_vec()))
        .collect();
    assert_eq!(rows, expected);
}
