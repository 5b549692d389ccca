//! Tenant lifecycle, PostgreSQL only: the create hook runs in the create transaction; a clone
//! copies rows with its triggers off; `create_in` without the registry's function of that
//! name. The rest runs on every backend
//! (`backends/shared/lifecycle.rs`, `backends/shared/clone.rs`).

use tenancy::Error;

use crate::assert_err;
use crate::lifecycle_support::{schema_exists, v1, Lifecycle};
use crate::support::{pool, raw_guards};

fn name(prefix: &str) -> String {
    tenancy_testdb::unique_name(prefix)
}

/// Whether some session came to wait for a lock that `waiting` (a count over `pg_locks`,
/// binding `binds`) names, polled every 10 ms for up to 2 s or until `done()`.
async fn came_to_wait(
    pool: &sqlx::PgPool,
    waiting: &str,
    binds: &[&str],
    done: impl Fn() -> bool,
) -> bool {
    for _ in 0..200 {
        let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(waiting.to_owned()));
        for bind in binds {
            count = count.bind(*bind);
        }
        if count.fetch_one(pool).await.unwrap() > 0 {
            return true;
        }
        if done() {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

/// Sessions waiting for the lifecycle lock of tenant `$2` of registry `$1`: its own key (a
/// bigint: its high half in `classid`, its low in `objid`), so that another test's wait is not
/// taken for this one's.
const WAITING_FOR_TENANT: &str =
    "WITH k AS (SELECT hashtextextended('tenancy:' || $1 || ':' || $2, 0) AS v) \
     SELECT count(*) FROM pg_locks, k WHERE locktype = 'advisory' AND NOT granted \
     AND objsubid = 1 AND classid::bigint = (k.v >> 32) & 4294967295 \
     AND objid::bigint = k.v & 4294967295";

/// Sessions waiting for a lock on the table named `$1`.
const WAITING_FOR_TABLE: &str =
    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)";

#[tokio::test]
async fn the_create_hook_runs_in_the_same_transaction() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let seeded = l
        .tenants
        .create_with(
            name("seeded"),
            Box::new(|conn, _tenant| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO guards (name, position) VALUES ('Seed', 'Guard')")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        raw_guards(&pool, &seeded).await,
        [("Seed".into(), "Guard".into())]
    );

    let n = name("hookfail");
    assert_err!(
        l.tenants
            .create_with(
                &n,
                Box::new(|_, _| Box::pin(async { Err("seed data missing".into()) }))
            )
            .await,
        Error::Hook { .. }
    );
    assert!(!schema_exists(&pool, &n).await);
    assert!(!l.tenants.exists(&n).await.unwrap());
}

#[tokio::test]
async fn a_clone_copies_rows_as_stored_with_its_triggers_off() {
    // A trigger the migrations make (names upper-cased on insert) does not fire on the copied
    // rows, and fires again in the clone afterwards.
    let pool = pool().await;
    let mut migrations = v1();
    migrations.push(crate::lifecycle_support::migration(
        2,
        sqlx::migrate::MigrationType::Simple,
        "CREATE FUNCTION upper_name() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$; \
         CREATE TRIGGER guards_upper BEFORE INSERT ON guards \
         FOR EACH ROW EXECUTE FUNCTION upper_name()",
    ));
    let l = Lifecycle::new(&pool, migrations).await;
    let tpl = l.tenants.create(name("tpl")).await.unwrap();
    let t = tpl.quoted();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {t}.guards DISABLE TRIGGER guards_upper; \
         INSERT INTO {t}.guards (name, position) VALUES ('Abu', 'Guard'); \
         ALTER TABLE {t}.guards ENABLE TRIGGER guards_upper"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let copy = l.tenants.clone_tenant(&tpl, name("copy")).await.unwrap();
    assert_eq!(
        raw_guards(&pool, &copy).await,
        [("Abu".to_owned(), "Guard".to_owned())]
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.guards (name, position) VALUES ('Bea', 'Guard')",
        copy.quoted()
    )))
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(raw_guards(&pool, &copy).await[1].0, "BEA");
}

/// Whether the registry has its function `create_in`.
async fn has_create_in(pool: &sqlx::PgPool, registry: &str) -> bool {
    sqlx::query_scalar("SELECT to_regprocedure($1) IS NOT NULL")
        .bind(format!("\"{registry}\".create_in(text, text, text)"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A registry without the function `create_in_many` (made by an older version): the batch is
/// registered a step at a time in one transaction, all or none, with the same refusals; a
/// handle that makes sure of the registry afterwards puts the function back.
#[tokio::test]
async fn create_in_many_without_the_registry_function_goes_a_step_at_a_time() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let container = l.tenants.create(name("box")).await.unwrap();
    let has = |pool: sqlx::PgPool, registry: String| async move {
        sqlx::query_scalar::<_, bool>("SELECT to_regprocedure($1) IS NOT NULL")
            .bind(format!("\"{registry}\".create_in_many(text[], text, text)"))
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(has(pool.clone(), l.registry.clone()).await);
    let drop = format!(
        "DROP FUNCTION \"{}\".create_in_many(text[], text, text)",
        l.registry
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();

    let (a, b) = (name("a"), name("b"));
    let made = l
        .tenants
        .create_in_many([&a, &b], &container)
        .await
        .unwrap();
    assert_eq!(made.len(), 2);
    for t in [&a, &b] {
        assert_eq!(
            l.tenants.tenant(t).await.unwrap().container(),
            container.as_str()
        );
    }
    let c = name("c");
    match l.tenants.create_in_many([&c, &b], &container).await {
        Err(Error::TenantExists { tenant }) => assert_eq!(tenant.as_str(), b),
        other => panic!("{other:?}"),
    }
    assert!(!l.tenants.exists(&c).await.unwrap());
    assert!(!has(pool.clone(), l.registry.clone()).await);

    let newer = l.with_migrations(&pool, v1());
    newer.create_in_many([&c], &container).await.unwrap();
    assert!(has(pool.clone(), l.registry.clone()).await);
    for t in [&a, &b, &c] {
        l.tenants.drop(t).await.unwrap();
    }
}

/// A registry without the function `create_in` (made by an older version, by a role the
/// handle's may not change it as): `create_in` registers the row-level tenant a step at a time,
/// with the same refusals; a handle that makes sure of the registry afterwards puts the
/// function back.
#[tokio::test]
async fn create_in_without_the_registry_function_goes_a_step_at_a_time() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let container = l.tenants.create(name("box")).await.unwrap();
    assert!(has_create_in(&pool, &l.registry).await);
    let drop = format!(
        "DROP FUNCTION \"{}\".create_in(text, text, text)",
        l.registry
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();

    let a = l.tenants.create_in(name("a"), &container).await.unwrap();
    assert_eq!(
        l.tenants.tenant(&a).await.unwrap().container(),
        container.as_str()
    );
    assert_err!(
        l.tenants.create_in(&a, &container).await,
        Error::TenantExists { .. }
    );
    assert!(!has_create_in(&pool, &l.registry).await);

    let newer = l.with_migrations(&pool, v1());
    let b = newer.create_in(name("b"), &container).await.unwrap();
    assert!(has_create_in(&pool, &l.registry).await);
    assert_err!(
        newer.create_in(&b, &container).await,
        Error::TenantExists { .. }
    );
    assert_err!(
        newer.create_in(&a, &container).await,
        Error::TenantExists { .. }
    );
    for t in [&a, &b] {
        l.tenants.drop(t).await.unwrap();
    }
}

/// A drop while a transaction of the tenant's has read a table and is about to insert into it
/// (a `bigserial` key, so the insert takes the table's sequence): the drop waits for the
/// transaction, which inserts and commits; then the drop removes the tenant. `DROP SCHEMA`
/// alone locks the sequence before the table, and one of the two failed with a deadlock.
#[tokio::test]
async fn a_drop_waits_for_a_transaction_that_read_then_inserts() {
    use crate::support::Guard;
    use tenancy::TenantModel;
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let t = l.tenants.create(name("busy")).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(Guard::query(&t).count(&mut *tx).await.unwrap(), 0);

    let dropping = {
        let (tenants, t) = (l.tenants.clone(), t.clone());
        tokio::spawn(async move { tenants.drop(&t).await })
    };
    let guards = format!("\"{t}\".guards");
    assert!(
        came_to_wait(&pool, WAITING_FOR_TABLE, &[&guards], || dropping
            .is_finished())
        .await,
        "the drop did not wait for the transaction's lock on guards"
    );
    Guard::new("Late", "Guard")
        .insert(&mut *tx, &t)
        .await
        .expect("the insert is not the deadlock's victim");
    tx.commit().await.unwrap();
    dropping
        .await
        .unwrap()
        .expect("the drop is not the deadlock's victim");
    assert!(!schema_exists(&pool, t.as_str()).await);
    assert!(!l.tenants.exists(&t).await.unwrap());
}

/// A rename while a transaction of the tenant's is open, then a new tenant made under the old
/// name: the transaction's later statements, which name the old schema, must still write the
/// renamed tenant's rows, never the new tenant's. The rename waits for the transaction (it
/// locks the schema's tables first); `ALTER SCHEMA … RENAME` alone does not wait, and the
/// transaction's next insert landed in the new tenant.
#[tokio::test]
async fn a_transaction_open_across_a_rename_never_writes_into_a_new_tenant_of_the_old_name() {
    use crate::support::Guard;
    use tenancy::TenantModel;
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let old = l.tenants.create(name("old")).await.unwrap();
    let renamed = tenancy::Tenant::new(name("renamed")).unwrap();
    let mut tx = pool.begin().await.unwrap();
    Guard::new("First", "Guard")
        .insert(&mut *tx, &old)
        .await
        .unwrap();

    let renaming = {
        let (tenants, old, renamed) = (l.tenants.clone(), old.clone(), renamed.clone());
        tokio::spawn(async move { tenants.rename(&old, &renamed).await })
    };
    // The rename is done (without the tables' locks) or waits for the transaction (with them).
    let guards = format!("\"{old}\".guards");
    came_to_wait(&pool, WAITING_FOR_TABLE, &[&guards], || {
        renaming.is_finished()
    })
    .await;
    let recreating = {
        let (tenants, old) = (l.tenants.clone(), old.clone());
        tokio::spawn(async move { tenants.create(&old).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Whatever the transaction's statements find under the old name is the old tenant. (Not
    // the library's insert again: its prepared statement would keep the plan it made before,
    // which names the table by identity until something invalidates it.)
    let second = format!(
        "INSERT INTO {}.guards (name, position) VALUES ('Second', 'Guard')",
        old.quoted()
    );
    let _ = sqlx::query(sqlx::AssertSqlSafe(second))
        .persistent(false)
        .execute(&mut *tx)
        .await;
    let _ = tx.commit().await;
    renaming.await.unwrap().unwrap();
    recreating.await.unwrap().unwrap();

    let names = |t: tenancy::Tenant| {
        let pool = pool.clone();
        async move {
            let mut names: Vec<String> = raw_guards(&pool, &t)
                .await
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(names(renamed.clone()).await, ["First", "Second"]);
    assert!(
        names(old.clone()).await.is_empty(),
        "the new tenant got the old one's row"
    );
    for t in [&old, &renamed] {
        l.tenants.drop(t).await.unwrap();
    }
}

/// Runs `operation` (`what`: its name) from a new tenant onto a new name while a `create_in`
/// registers that name: it must be refused (`TenantExists`), the name staying the row-level
/// tenant's, with no schema and no registry row of its own. Made to happen every time: the test
/// holds the source's lock (the first of the two the operation takes) until the operation is
/// seen waiting for it and the `create_in` is done.
async fn onto_a_name_a_create_in_takes_meanwhile<F>(
    what: &str,
    operation: impl FnOnce(tenancy::Tenants, tenancy::Tenant, tenancy::Tenant) -> F,
) where
    F: std::future::Future<Output = Result<tenancy::Tenant, Error>> + Send + 'static,
{
    use crate::rls::{two_tenants, with_tenant_column};
    let pool = pool().await;
    let (l, container, _a, _b) = two_tenants(&pool, with_tenant_column()).await;
    // Not the container: the `create_in` takes its lock too.
    let source = l.tenants.create(name("mm")).await.unwrap();
    let target = tenancy::Tenant::new(name("zz")).unwrap();
    assert!(source < target, "the source's lock is taken first");
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('tenancy:' || $1 || ':' || $2, 0))")
        .bind(&l.registry)
        .bind(source.as_str())
        .execute(&mut *holder)
        .await
        .unwrap();
    let running = tokio::spawn(operation(l.tenants.clone(), source.clone(), target.clone()));
    let binds = [l.registry.as_str(), source.as_str()];
    assert!(
        came_to_wait(&pool, WAITING_FOR_TENANT, &binds, || running.is_finished()).await,
        "the {what} did not wait for the source's lock"
    );
    l.tenants.create_in(&target, &container).await.unwrap();
    holder.commit().await.unwrap();
    match running.await.unwrap() {
        Err(Error::TenantExists { tenant }) => assert_eq!(tenant, target),
        other => panic!("expected the {what} to be refused with TenantExists, got {other:?}"),
    }
    assert!(l.tenants.tenant(&target).await.unwrap().is_row_level());
    assert!(!schema_exists(&pool, target.as_str()).await);
    assert!(schema_exists(&pool, source.as_str()).await);
    let registered: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.tenants WHERE name = $1",
        tenancy::Tenant::new(&l.registry).unwrap().quoted()
    )))
    .bind(target.as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        registered, 0,
        "the {what} left a registry row of its target"
    );
    for t in [&target, &source] {
        l.tenants.drop(t).await.unwrap();
    }
}

/// A rename to a name that a `create_in` registers while the rename waits for its locks is
/// refused. It checked before taking the locks that no row-level tenant had the name, and not
/// again under them, so both went through: one name both a schema tenant and a row-level one.
#[tokio::test]
async fn a_rename_onto_a_name_a_create_in_takes_meanwhile_is_refused() {
    onto_a_name_a_create_in_takes_meanwhile("rename", |tenants, source, target| async move {
        tenants.rename(&source, &target).await
    })
    .await;
}

/// A clone onto a name that a `create_in` registers while the clone waits for its locks is
/// refused. It checks under the locks, but on PostgreSQL its transaction is `REPEATABLE READ`:
/// the check saw the `create_in` only once its snapshot was taken after it held them.
#[tokio::test]
async fn a_clone_onto_a_name_a_create_in_takes_meanwhile_is_refused() {
    onto_a_name_a_create_in_takes_meanwhile("clone", |tenants, source, target| async move {
        tenants.clone_tenant(&source, &target).await
    })
    .await;
}

/// The placement guard's `WHEN` skips its function for a tenant the transaction has checked
/// already in that container (the setting `tenancy.placed`, `<schema oid>/<tenant>`), and for
/// nothing else: in a transaction that wrote rows of a placed tenant, a row of a tenant dropped
/// since it was resolved is still refused; a `NULL` tenant column is refused on a connection
/// that never had the setting; a check undone by a savepoint rolled back is made again; after
/// the container is renamed, a tenant of its old name is checked like any other. A partitioned
/// table with the tenant column is guarded through its partitions (the drop put the guard on
/// the leaves only: on the parent too, its copy on the partition clashed).
#[tokio::test]
async fn the_placement_guard_checks_each_tenant_once_per_transaction_and_no_other() {
    use crate::rls::{two_tenants, with_tenant_column};
    use crate::support::RowGuard;
    use sqlx::Acquire;
    use tenancy::TenantModel;

    let pool = pool().await;
    let (l, container, a, _b) = two_tenants(&pool, with_tenant_column()).await;
    let c = container.quoted();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {c}.notes (tenant_id text, body text NOT NULL);
         CREATE TABLE {c}.visits (tenant_id text NOT NULL, at int NOT NULL) PARTITION BY LIST (tenant_id);
         CREATE TABLE {c}.visits_all PARTITION OF {c}.visits DEFAULT"
    )))
    .execute(&pool)
    .await
    .unwrap();
    // Dropping a row-level tenant puts the guard on the container's tables with the column.
    let gone = l.tenants.create_in(name("gone"), &container).await.unwrap();
    l.tenants.drop(gone.as_str()).await.unwrap();
    let guarded: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         WHERE t.tgname = 'tenancy_placed' AND c.relnamespace = to_regnamespace($1) \
         AND NOT t.tgisinternal ORDER BY 1",
    )
    .bind(container.as_str())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(guarded, ["guards", "notes", "visits_all"]);
    let oid = |name: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT to_regnamespace($1)::oid::text")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let schema = oid(container.as_str().to_owned()).await;

    let db = l.tenants.pool_for(&a).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    for n in ["Ann", "Amy"] {
        RowGuard::new(n, "Guard").insert(&mut tx, &a).await.unwrap();
    }
    let placed: String = sqlx::query_scalar("SELECT current_setting('tenancy.placed', true)")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(placed, format!("{schema}/{a}"));
    let refused = RowGuard::new("Gil", "Guard").insert(&mut tx, &gone).await;
    assert_err!(refused, Error::NotPlaced { .. });
    tx.rollback().await.unwrap();

    // A partition and a nullable column are guarded too; a `NULL` tenant never passes, even on
    // a connection that never had the setting.
    let not_placed = |e: sqlx::Error| {
        e.as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned())
    };
    let mut fresh =
        <sqlx::PgConnection as sqlx::Connection>::connect(&crate::support::database_url())
            .await
            .unwrap();
    for (sql, tenant) in [
        (
            format!("INSERT INTO {c}.notes (tenant_id, body) VALUES ($1, 'x')"),
            None,
        ),
        (
            format!("INSERT INTO {c}.visits (tenant_id, at) VALUES ($1, 1)"),
            Some(gone.as_str()),
        ),
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .execute(&mut fresh)
            .await
            .unwrap_err();
        assert_eq!(not_placed(err).as_deref(), Some("TNCY3"));
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {c}.visits (tenant_id, at) VALUES ($1, 1)"
    )))
    .bind(a.as_str())
    .execute(&mut fresh)
    .await
    .unwrap();

    // A savepoint rolled back undoes the check with its lock: the next row is checked again.
    let mut tx = db.begin().await.unwrap();
    {
        let mut inner = tx.begin().await.unwrap();
        RowGuard::new("Ann", "Guard")
            .insert(&mut *inner, &a)
            .await
            .unwrap();
        inner.rollback().await.unwrap();
    }
    let placed: Option<String> =
        sqlx::query_scalar("SELECT nullif(current_setting('tenancy.placed', true), '')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(placed, None, "the check is undone with the savepoint");
    tx.rollback().await.unwrap();

    // The container renamed: a tenant named as it was is checked (and locked) like any other.
    let renamed = l
        .tenants
        .rename(container.as_str(), name("moved"))
        .await
        .unwrap();
    let old_name = l
        .tenants
        .create_in(container.as_str(), &renamed)
        .await
        .unwrap();
    let mut tx = l
        .tenants
        .pool_for(&old_name)
        .await
        .unwrap()
        .begin()
        .await
        .unwrap();
    RowGuard::new("Oli", "Guard")
        .insert(&mut tx, &old_name)
        .await
        .unwrap();
    let placed: Option<String> =
        sqlx::query_scalar("SELECT current_setting('tenancy.placed', true)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    let checked = format!("{schema}/{old_name}");
    assert_eq!(
        placed.as_deref(),
        Some(checked.as_str()),
        "the function checked it"
    );
    tx.rollback().await.unwrap();
}
