//! `distribute_rows`: a container of row-level tenants whose tables are distributed by the
//! tenant column (Citus's row-based sharding) instead of living whole on one worker. Where
//! the rows are is read from Citus's catalog and from the workers' shards directly, bypassing
//! the coordinator.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, MigrationType};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tenancy::postgres::{CitusError, CitusRefusal, RowSharding};
use tenancy::{Error, MigrateOptions, OnConflict, Record, Tenant, TenantModel};

use super::{name, on_node, pool, Lifecycle, Pool, RowGuard};
use crate::assert_err;
use crate::lifecycle_support::migration;

/// A reference table and `guards` keyed by (tenant, id), as Citus wants a table distributed by
/// the tenant column: its primary key includes it.
const PLANS: &str = "CREATE TABLE plans (id int PRIMARY KEY, label text NOT NULL);
INSERT INTO plans VALUES (1, 'free')";
const GUARDS: &str = "CREATE TABLE guards (
    id bigserial,
    tenant_id varchar(63) NOT NULL DEFAULT '',
    name text NOT NULL,
    position text NOT NULL,
    age integer,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    plan int NOT NULL DEFAULT 1 REFERENCES plans (id),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX guards_name ON guards (tenant_id, name)";
/// A later migration: a column on a distributed table, a table with a foreign key into
/// `guards` on (tenant, id), and a table without the tenant column; it ends on another
/// `search_path`, which must not change which schema its new tables are distributed in.
const NOTES: &str = "ALTER TABLE guards ADD COLUMN badge text;
CREATE TABLE notes (
    id bigserial,
    tenant_id varchar(63) NOT NULL,
    guard_id bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, guard_id) REFERENCES guards (tenant_id, id)
);
CREATE TABLE kinds (kind text PRIMARY KEY);
SET LOCAL search_path TO public";

/// `plans` and `guards`, then `more`, as migrations 1, 2, ….
pub(super) fn migrations(more: &[&'static str]) -> Vec<Migration> {
    [PLANS, GUARDS]
        .iter()
        .chain(more)
        .enumerate()
        .map(|(i, sql)| migration(1 + i as i64, MigrationType::Simple, sql))
        .collect()
}

/// How Citus holds table `table` of schema `schema`: `'h'` distributed by hash, `'n'` a
/// reference table (or a distributed schema's table); its distribution column; its colocation
/// group. `None` if Citus does not hold it.
pub(super) async fn held(
    pool: &Pool,
    schema: &Tenant,
    table: &str,
) -> Option<(String, Option<String>, i32)> {
    sqlx::query_as(
        "SELECT partmethod::text, column_to_column_name(logicalrelid, partkey), colocationid \
         FROM pg_dist_partition WHERE logicalrelid = to_regclass($1)",
    )
    .bind(format!("{}.{table}", schema.quoted()))
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// Whether `schema` is a Citus distributed schema.
pub(super) async fn is_distributed_schema(pool: &Pool, schema: &Tenant) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace($1))",
    )
    .bind(schema.as_str())
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The names in `tenant`'s shard of `container.guards`, read on the worker holding that
/// shard, bypassing the coordinator; and that worker's port.
pub(super) async fn shard_rows(
    pool: &Pool,
    container: &Tenant,
    tenant: &Tenant,
) -> (u16, Vec<String>) {
    let table = format!("{}.guards", container.quoted());
    let (shard, host, port): (String, String, i32) = sqlx::query_as(
        "SELECT shard_name($1::regclass, s.id)::text, n.nodename::text, n.nodeport \
         FROM (SELECT get_shard_id_for_distribution_column($1::regclass, $2) AS id) s \
         JOIN pg_dist_placement pl ON pl.shardid = s.id \
         JOIN pg_dist_node n ON n.groupid = pl.groupid",
    )
    .bind(&table)
    .bind(tenant.as_str())
    .fetch_one(pool)
    .await
    .unwrap();
    let port = u16::try_from(port).unwrap();
    let mut conn = on_node(&tenancy::postgres::Node::new(host, port)).await;
    let sql = format!("SELECT name FROM {shard} WHERE tenant_id = $1 ORDER BY name");
    let names = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_all(&mut conn)
        .await
        .unwrap();
    (port, names)
}

/// The bytes of the container's `guards` the coordinator itself keeps in the table (not in a
/// shard): Citus leaves a distributed table's former rows there, invisible, unless emptied.
async fn local_bytes(pool: &Pool, container: &Tenant) -> i64 {
    sqlx::query_scalar("SELECT pg_relation_size(to_regclass($1))")
        .bind(format!("{}.guards", container.quoted()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A row of `container.notes` for tenant `t` referencing its guard `guard_id`.
async fn note_on(pool: &Pool, container: &Tenant, t: &Tenant, guard_id: i64) {
    let sql = format!(
        "INSERT INTO {}.notes (tenant_id, guard_id, body) VALUES ($1, $2, 'hi')",
        container.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(t.as_str())
        .bind(guard_id)
        .execute(pool)
        .await
        .unwrap();
}

async fn guard(l: &Lifecycle, tenant: &Tenant, name: &str) -> Record<RowGuard> {
    RowGuard::new(name, "Guard")
        .insert(&l.tenants, tenant)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_distributed_container_spreads_its_tenants_over_the_workers_each_on_one_shard() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    assert!(is_distributed_schema(&pool, &container).await);
    // A row from before: it moves into the shards with the table.
    let early = l
        .tenants
        .create_in(name("early"), &container)
        .await
        .unwrap();
    let before = guard(&l, &early, "Ada").await;

    let spread = l.tenants.distribute_rows(&container).await.unwrap();
    let mut want = RowSharding::default();
    want.by_tenant = vec!["guards".into()];
    want.reference = vec!["plans".into()];
    assert_eq!(spread, want);
    assert!(!is_distributed_schema(&pool, &container).await);
    let (method, column, _) = held(&pool, &container, "guards").await.unwrap();
    assert_eq!(
        (method.as_str(), column.as_deref()),
        ("h", Some("tenant_id"))
    );
    let repmodel: String = sqlx::query_scalar(
        "SELECT repmodel::text FROM pg_dist_partition WHERE logicalrelid = to_regclass($1)",
    )
    .bind(format!("{}.plans", container.quoted()))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(repmodel, "t", "plans is a reference table");
    assert_eq!(
        local_bytes(&pool, &container).await,
        0,
        "no rows left on the coordinator"
    );

    // The row from before is where its tenant's shard is, and the library finds it.
    assert_eq!(shard_rows(&pool, &container, &early).await.1, ["Ada"]);
    let found = RowGuard::find(&l.tenants, &early, before.id).await.unwrap();
    assert_eq!(found.map(|g| g.into_inner().name), Some("Ada".to_owned()));

    // Twenty tenants, a row each: each row on its tenant's shard, the tenants on both workers.
    let mut ports = std::collections::BTreeSet::new();
    let mut tenants = Vec::new();
    for i in 0..20 {
        let t = l
            .tenants
            .create_in(name(&format!("t{i}")), &container)
            .await
            .unwrap();
        let g = guard(&l, &t, &format!("g{i}")).await;
        let (port, names) = shard_rows(&pool, &container, &t).await;
        assert_eq!(names, [format!("g{i}")], "{t}'s shard holds its row alone");
        ports.insert(port);
        tenants.push((t, g));
    }
    assert_eq!(
        ports.len(),
        2,
        "the container's tenants are on both workers: {ports:?}"
    );

    // What one tenant writes, another never reads, changes or deletes, on any shard.
    let (a, ga) = &tenants[0];
    let (b, gb) = &tenants[1];
    assert_ne!(ga.id, gb.id, "one sequence for the table");
    assert!(RowGuard::find(&l.tenants, a, gb.id)
        .await
        .unwrap()
        .is_none());
    let mut changed = ga.clone();
    changed.position = "Captain".into();
    changed.update(&l.tenants, a).await.unwrap();
    let stored = RowGuard::find(&l.tenants, a, ga.id).await.unwrap().unwrap();
    assert_eq!(stored.position, "Captain");
    let seen_by_b = RowGuard::query(b).fetch_all(&l.tenants).await.unwrap();
    assert_eq!(seen_by_b.len(), 1);
    assert_eq!(seen_by_b[0].name, "g1");
    assert_eq!(seen_by_b[0].position, "Guard");

    // An upsert on the per-tenant key: b's g0 is a row of b's shard; a's updates a's row.
    for (tenant, position) in [(b, "Thief"), (a, "Chief")] {
        let upserted = RowGuard::upsert_many(
            &l.tenants,
            tenant,
            vec![RowGuard::new("g0", position)],
            OnConflict::on(RowGuard::NAME)
                .per_tenant()
                .replace(RowGuard::POSITION),
        )
        .await
        .unwrap();
        assert_eq!(upserted.len(), 1);
    }
    assert_eq!(shard_rows(&pool, &container, b).await.1, ["g0", "g1"]);
    let a_rows = RowGuard::query(a).fetch_all(&l.tenants).await.unwrap();
    assert_eq!(a_rows.len(), 1);
    assert_eq!(
        (a_rows[0].name.as_str(), a_rows[0].position.as_str()),
        ("g0", "Chief")
    );

    // Dropping a row-level tenant deletes its rows from its shard only.
    l.tenants.drop(a.as_str()).await.unwrap();
    assert!(shard_rows(&pool, &container, a).await.1.is_empty());
    assert_eq!(shard_rows(&pool, &container, b).await.1, ["g0", "g1"]);
}

#[tokio::test]
async fn a_later_migration_distributes_the_tables_it_adds_to_a_distributed_container_only() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    let own = l.tenants.create(name("own")).await.unwrap();
    l.tenants.distribute_rows(&container).await.unwrap();
    let t = l.tenants.create_in(name("t"), &container).await.unwrap();
    let g = guard(&l, &t, "Ada").await;

    let newer = l.with_migrations(&pool, migrations(&[NOTES]));
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert!(
        report.is_success(),
        "{:?}",
        report.failed().collect::<Vec<_>>()
    );

    let (_, _, guards_group) = held(&pool, &container, "guards").await.unwrap();
    let (method, column, group) = held(&pool, &container, "notes").await.unwrap();
    assert_eq!(
        (method.as_str(), column.as_deref(), group),
        ("h", Some("tenant_id"), guards_group),
        "notes is distributed by the tenant column, colocated with guards"
    );
    let (method, _, _) = held(&pool, &container, "kinds").await.unwrap();
    assert_eq!(method, "n", "kinds (no tenant column) is a reference table");
    let fk: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = to_regclass($1)",
    )
    .bind(format!("{}.notes", container.quoted()))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(fk, 1, "the foreign key into guards is there again");

    // The foreign key holds on the shards: a note for another tenant's guard is refused.
    let notes = format!("{}.notes", container.quoted());
    let insert = format!("INSERT INTO {notes} (tenant_id, guard_id, body) VALUES ($1, $2, 'x')");
    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
        .bind(t.as_str())
        .bind(g.id)
        .execute(&pool)
        .await
        .unwrap();
    let refused = sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind("someone_else")
        .bind(g.id)
        .execute(&pool)
        .await
        .unwrap_err();
    let code = refused.as_database_error().and_then(|e| e.code());
    assert_eq!(
        code.as_deref(),
        Some("23503"),
        "a foreign key violation: {refused}"
    );

    // The tenant of its own is a distributed schema still, its new tables in it (in its
    // colocation group, not reference tables).
    assert!(is_distributed_schema(&pool, &own).await);
    let (method, column, group) = held(&pool, &own, "notes").await.unwrap();
    let own_group: i32 = sqlx::query_scalar(
        "SELECT colocationid FROM pg_dist_schema WHERE schemaid = to_regnamespace($1)",
    )
    .bind(own.as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((method.as_str(), column, group), ("n", None, own_group));
}

#[tokio::test]
async fn what_cannot_be_distributed_by_the_tenant_column_is_refused_and_changes_nothing() {
    let pool = pool().await;
    // guards keyed by id alone: Citus refuses to distribute it by tenant_id.
    let l = Lifecycle::new(
        &pool,
        vec![
            migration(1, MigrationType::Simple, super::V1_GUARDS),
            migration(
                2,
                MigrationType::Simple,
                "ALTER TABLE guards ADD COLUMN tenant_id varchar(63) NOT NULL DEFAULT ''",
            ),
        ],
    )
    .await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    let t = l.tenants.create_in(name("t"), &container).await.unwrap();
    guard(&l, &t, "Ada").await;
    let refused = l.tenants.distribute_rows(&container).await;
    match &refused {
        Err(Error::Refused {
            operation: "distribute_rows",
            source,
            ..
        }) => {
            let citus = source.downcast_ref::<CitusError>();
            assert!(
                matches!(citus, Some(CitusError::RowSharding { .. })),
                "{citus:?}"
            );
            let chain = format!("{:?}", std::error::Error::source(&**source));
            assert!(
                chain.contains("guards"),
                "Citus's error names the table: {chain}"
            );
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert!(
        is_distributed_schema(&pool, &container).await,
        "still a distributed schema"
    );
    assert_eq!(
        RowGuard::query(&t)
            .fetch_all(&l.tenants)
            .await
            .unwrap()
            .len(),
        1
    );

    // No table with the tenant column: nothing to distribute by.
    let plain = Lifecycle::new(
        &pool,
        vec![migration(1, MigrationType::Simple, super::V1_GUARDS)],
    )
    .await;
    let container = plain.tenants.create(name("plain")).await.unwrap();
    assert_err!(
        plain.tenants.distribute_rows(&container).await,
        Error::Unsupported {
            operation: "distribute_rows",
            ..
        }
    );
    assert!(is_distributed_schema(&pool, &container).await);
    assert_err!(
        plain
            .tenants
            .distribute_rows(&Tenant::new("nobody_here").unwrap())
            .await,
        Error::NotATenant { .. }
    );
}

#[tokio::test]
async fn a_row_level_tenant_of_a_distributed_container_is_renamed_rows_and_references_moved() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[NOTES])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    l.tenants.distribute_rows(&container).await.unwrap();
    let t = l.tenants.create_in(name("t"), &container).await.unwrap();
    let other = l.tenants.create_in(name("o"), &container).await.unwrap();
    let ada = guard(&l, &t, "Ada").await;
    guard(&l, &t, "Bo").await;
    guard(&l, &other, "Cy").await;
    // A note referencing Ada (tenant, id): the rename must carry both rows together.
    note_on(&pool, &container, &t, ada.id).await;

    let new = name("renamed");
    let renamed = l.tenants.rename(t.as_str(), &new).await.unwrap();
    assert_eq!(renamed.container(), container.as_str());
    assert!(!l.tenants.exists(t.as_str()).await.unwrap());
    assert!(
        shard_rows(&pool, &container, &t).await.1.is_empty(),
        "no row of the old name"
    );
    assert_eq!(
        shard_rows(&pool, &container, &renamed).await.1,
        ["Ada", "Bo"]
    );
    assert_eq!(shard_rows(&pool, &container, &other).await.1, ["Cy"]);
    let found = RowGuard::find(&l.tenants, &renamed, ada.id).await.unwrap();
    assert_eq!(
        found.map(|g| g.into_inner().name),
        Some("Ada".to_owned()),
        "its key kept"
    );
    let notes: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id::text, guard_id FROM {}.notes ORDER BY id",
        container.quoted()
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(notes, [(renamed.as_str().to_owned(), ada.id)]);
}

/// In a container distributed by the tenant column, a row-level tenant's rename (rows copied to
/// the new name's shard) and drop wait for its transaction in flight: the row it inserted,
/// committed while they waited, goes with the others, and none stays under the old name. A
/// write through the `Tenant` resolved before either is refused afterwards (`NotPlaced`).
#[tokio::test]
async fn a_rename_and_a_drop_in_a_distributed_container_wait_for_the_tenants_open_transaction() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    l.tenants.distribute_rows(&container).await.unwrap();
    let t = l.tenants.create_in(name("t"), &container).await.unwrap();
    guard(&l, &t, "Ada").await;
    let new = name("renamed");
    for step in ["rename", "drop"] {
        let now = match step {
            "rename" => t.clone(),
            _ => l.tenants.tenant(&new).await.unwrap(),
        };
        let mut tx = l
            .tenants
            .pool_for(&now)
            .await
            .unwrap()
            .begin()
            .await
            .unwrap();
        let late = format!("{step}-late");
        RowGuard::new(&late, "Guard")
            .insert(&mut tx, &now)
            .await
            .unwrap();
        let running = {
            let (db, old, new) = (l.tenants.clone(), now.as_str().to_owned(), new.clone());
            tokio::spawn(async move {
                match step {
                    "rename" => db.rename(&old, &new).await.map(|_| ()),
                    _ => db.drop(&old).await.map(|_| ()),
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        if running.is_finished() {
            panic!(
                "the {step} did not wait for the open transaction: {:?}",
                running.await
            );
        }
        tx.commit().await.unwrap();
        running.await.unwrap().unwrap();
        assert!(
            shard_rows(&pool, &container, &now).await.1.is_empty(),
            "{step}: a row of the old name"
        );
        if step == "rename" {
            let renamed = Tenant::new(&new).unwrap().rows_in(&container);
            let mut rows = shard_rows(&pool, &container, &renamed).await.1;
            rows.sort();
            assert_eq!(rows, ["Ada", "rename-late"]);
        }
        // A write through the `Tenant` resolved before is refused (the guard on the shards).
        let stale = RowGuard::new("stale", "Guard")
            .insert(&l.tenants, &now)
            .await;
        assert_err!(stale, Error::NotPlaced { .. });
        assert!(
            shard_rows(&pool, &container, &now).await.1.is_empty(),
            "{step}: a stale write stored"
        );
    }
    let renamed = Tenant::new(&new).unwrap().rows_in(&container);
    assert!(
        shard_rows(&pool, &container, &renamed).await.1.is_empty(),
        "the drop took every row"
    );
    // The dropped name made again writes again.
    let again = l.tenants.create_in(&new, &container).await.unwrap();
    guard(&l, &again, "Bo").await;
    assert_eq!(shard_rows(&pool, &container, &again).await.1, ["Bo"]);
}

/// A container whose tables carry the placement guard (a row-level tenant dropped there while
/// it was a distributed schema) is distributed by the tenant column with the guard: a write
/// through the dropped tenant's `Tenant` is still refused, its neighbour's kept. It is cloned
/// as well.
#[tokio::test]
async fn a_guarded_container_is_distributed_with_its_guard() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    let gone = l.tenants.create_in(name("gone"), &container).await.unwrap();
    let stays = l
        .tenants
        .create_in(name("stays"), &container)
        .await
        .unwrap();
    guard(&l, &gone, "Ada").await;
    guard(&l, &stays, "Bo").await;
    l.tenants.drop(gone.as_str()).await.unwrap();
    // A guarded container is cloned (the copy does not turn the guard off on the clone).
    l.tenants
        .clone_tenant(container.as_str(), &name("copy"))
        .await
        .unwrap();
    l.tenants.distribute_rows(&container).await.unwrap();
    let stale = RowGuard::new("stale", "Guard")
        .insert(&l.tenants, &gone)
        .await;
    assert_err!(stale, Error::NotPlaced { .. });
    guard(&l, &stays, "Cy").await;
    assert!(shard_rows(&pool, &container, &gone).await.1.is_empty());
    let mut kept = shard_rows(&pool, &container, &stays).await.1;
    kept.sort();
    assert_eq!(kept, ["Bo", "Cy"]);
    // A later migration's table is distributed with the guard on it.
    let newer = l.with_migrations(&pool, migrations(&[NOTES]));
    newer.migrate(container.as_str()).await.unwrap();
    assert_eq!(held(&pool, &container, "notes").await.unwrap().0, "h");
    let sql = format!(
        "INSERT INTO {c}.notes (tenant_id, guard_id, body) \
         SELECT tenant_id, id, 'note' FROM {c}.guards WHERE tenant_id = $1 LIMIT 1",
        c = container.quoted()
    );
    let noted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(stays.as_str())
        .execute(&pool)
        .await;
    assert_eq!(noted.unwrap().rows_affected(), 1);
    let sql = format!(
        "INSERT INTO {}.notes (tenant_id, guard_id, body) VALUES ($1, 1, 'stale')",
        container.quoted()
    );
    let late = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(gone.as_str())
        .execute(&pool)
        .await;
    assert_eq!(
        sqlstate(&late).as_deref(),
        Some("TNCY3"),
        "the stale write into the new table: {late:?}"
    );
}

/// In a container distributed by the tenant column (its rows on the workers' hash shards), a
/// promote copies a tenant's rows, and the rows referencing them, into a distributed schema of
/// its own and deletes them from the shards; a write through the row-level `Tenant` resolved
/// before it is refused (its tombstone, read by the guard on the worker); the neighbour keeps
/// its rows and writes. A demote puts every row back on the tenant's shard, and the name
/// writes there again.
#[tokio::test]
async fn a_tenant_of_a_distributed_container_is_promoted_to_a_schema_of_its_own_and_back() {
    let pool = pool().await;
    // `guards` without the reference to `plans` (whose seeded row a demote would have nowhere
    // to put: it has no tenant column).
    let plain = GUARDS.replace(
        "    plan int NOT NULL DEFAULT 1 REFERENCES plans (id),\n",
        "",
    );
    let steps = vec![
        migration(1, MigrationType::Simple, &plain),
        migration(2, MigrationType::Simple, NOTES),
    ];
    let l = Lifecycle::new(&pool, steps).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    l.tenants.distribute_rows(&container).await.unwrap();
    let t = l.tenants.create_in(name("t"), &container).await.unwrap();
    let other = l.tenants.create_in(name("o"), &container).await.unwrap();
    let ada = guard(&l, &t, "Ada").await;
    guard(&l, &t, "Bo").await;
    guard(&l, &other, "Ada").await;
    let note = |schema: &Tenant| {
        format!(
            "SELECT n.tenant_id::text, g.name FROM {s}.notes n \
             JOIN {s}.guards g ON g.tenant_id = n.tenant_id AND g.id = n.guard_id ORDER BY n.id",
            s = schema.quoted()
        )
    };
    note_on(&pool, &container, &t, ada.id).await;

    let moved = l.tenants.promote(t.as_str()).await.unwrap();
    assert_eq!(moved.rows, 3, "two guards and a note");
    let own = moved.tenant;
    assert_eq!(own.container(), t.as_str());
    assert!(is_distributed_schema(&pool, &own).await);
    let mut names: Vec<String> = RowGuard::query(&own)
        .fetch_all(&l.tenants)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.into_inner().name)
        .collect();
    names.sort();
    assert_eq!(names, ["Ada", "Bo"]);
    let notes: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(note(&own)))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(notes, [(t.as_str().to_owned(), "Ada".to_owned())]);
    assert!(shard_rows(&pool, &container, &t).await.1.is_empty());
    assert_eq!(shard_rows(&pool, &container, &other).await.1, ["Ada"]);
    assert_err!(
        RowGuard::new("Stale", "Guard").insert(&l.tenants, &t).await,
        Error::NotPlaced { .. }
    );
    assert!(shard_rows(&pool, &container, &t).await.1.is_empty());
    guard(&l, &other, "Cy").await;
    guard(&l, &own, "Di").await;

    let back = l.tenants.demote(t.as_str(), &container).await.unwrap();
    assert_eq!(back.rows, 4, "three guards and a note");
    let placed = back.tenant;
    assert_eq!(placed.container(), container.as_str());
    assert!(
        !is_distributed_schema(&pool, &own).await,
        "its schema dropped"
    );
    assert_eq!(
        shard_rows(&pool, &container, &placed).await.1,
        ["Ada", "Bo", "Di"]
    );
    assert_eq!(shard_rows(&pool, &container, &other).await.1, ["Ada", "Cy"]);
    let notes: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(note(&container)))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(notes, [(t.as_str().to_owned(), "Ada".to_owned())]);
    guard(&l, &placed, "Ed").await;
    assert_eq!(RowGuard::query(&placed).count(&l.tenants).await.unwrap(), 4);
}

/// The SQLSTATE of a statement's error, if it failed on the server.
fn sqlstate<T>(result: &Result<T, sqlx::Error>) -> Option<String> {
    let e = result.as_ref().err()?.as_database_error()?;
    e.code().map(|c| c.into_owned())
}

/// The guard's skip of a tenant the transaction has checked is per container, not per name: a
/// container renamed away and a new container of its old name are two, so a transaction that
/// wrote tenant x in the new one is still refused x's write in the renamed one.
#[tokio::test]
async fn a_tenant_checked_in_one_container_is_checked_again_in_a_renamed_namesake() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[])).await;
    let db = &l.tenants;
    let first = name("cont");
    // `first`'s tables guarded (a drop), then renamed away: the guard goes with them.
    let container = db.create(&first).await.unwrap();
    let y = db.create_in(name("y"), &container).await.unwrap();
    db.drop(y.as_str()).await.unwrap();
    let renamed = db.rename(&first, &name("moved")).await.unwrap();
    let x_name = name("x");
    let stale = db.create_in(&x_name, &renamed).await.unwrap();
    db.drop(&x_name).await.unwrap();
    // A new container of the first one's name, guarded too, and x made again there.
    let again = db.create(&first).await.unwrap();
    let z = db.create_in(name("z"), &again).await.unwrap();
    db.drop(z.as_str()).await.unwrap();
    db.create_in(&x_name, &again).await.unwrap();
    // Both on one worker: the skip's setting is the worker connection's.
    let node = db.placement_of(again.as_str()).await.unwrap().unwrap();
    if db.placement_of(renamed.as_str()).await.unwrap().as_ref() != Some(&node) {
        db.move_to(renamed.as_str(), &node).await.unwrap();
    }
    // One transaction writing both (plain SQL: the library refuses a transaction of one tenant
    // for another's statements; the guard is the server's, for any statement).
    let insert = |c: &Tenant| {
        format!(
            "INSERT INTO {}.guards (tenant_id, name, position) VALUES ($1, 'n', 'Guard')",
            c.quoted()
        )
    };
    let mut tx = pool.begin().await.unwrap();
    let sql = sqlx::AssertSqlSafe(insert(&again));
    sqlx::query(sql)
        .bind(&x_name)
        .execute(&mut *tx)
        .await
        .unwrap();
    let sql = sqlx::AssertSqlSafe(insert(&renamed));
    let late = sqlx::query(sql).bind(&x_name).execute(&mut *tx).await;
    assert_eq!(
        sqlstate(&late).as_deref(),
        Some("TNCY3"),
        "the stale write in the renamed container: {late:?}"
    );
    drop(tx);
    assert!(shard_rows(&pool, &renamed, &stale).await.1.is_empty());
}

/// Where Citus keeps the container's tables, per table by name: its oid (a table made again
/// has another), how it is distributed, by which column, in which colocation group, and its
/// shards with the node groups holding them. The container's foreign keys, each as defined.
async fn layout(pool: &Pool, container: &Tenant) -> (Vec<Layout>, Vec<String>) {
    let tables = sqlx::query_as(
        "SELECT c.relname::text, c.oid::int8, p.partmethod::text, \
                column_to_column_name(p.logicalrelid, p.partkey), p.colocationid, \
                array_agg(s.shardid ORDER BY s.shardid, pl.groupid), \
                array_agg(pl.groupid ORDER BY s.shardid, pl.groupid) \
         FROM pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid \
         JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid \
         JOIN pg_dist_placement pl ON pl.shardid = s.shardid \
         WHERE c.relnamespace = to_regnamespace($1) GROUP BY 1, 2, 3, 4, 5 ORDER BY 1",
    )
    .bind(container.as_str())
    .fetch_all(pool)
    .await
    .unwrap();
    let keys = sqlx::query_scalar(
        "SELECT k.conrelid::regclass::text || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid) \
         FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
         WHERE c.relnamespace = to_regnamespace($1) AND k.contype = 'f' ORDER BY 1",
    )
    .bind(container.as_str())
    .fetch_all(pool)
    .await
    .unwrap();
    (tables, keys)
}

type Layout = (String, i64, String, Option<String>, i32, Vec<i64>, Vec<i32>);

/// `what` (an expression over the shard's columns, as text) of `tenant`'s rows in its shard of
/// `container.table`, read on the worker holding that shard, bypassing the coordinator.
async fn on_shard(
    pool: &Pool,
    container: &Tenant,
    table: &str,
    tenant: &Tenant,
    what: &str,
) -> Vec<String> {
    let table = format!("{}.{table}", container.quoted());
    let (shard, host, port): (String, String, i32) = sqlx::query_as(
        "SELECT shard_name($1::regclass, s.id)::text, n.nodename::text, n.nodeport \
         FROM (SELECT get_shard_id_for_distribution_column($1::regclass, $2) AS id) s \
         JOIN pg_dist_placement pl ON pl.shardid = s.id \
         JOIN pg_dist_node n ON n.groupid = pl.groupid",
    )
    .bind(&table)
    .bind(tenant.as_str())
    .fetch_one(pool)
    .await
    .unwrap();
    let mut conn = on_node(&tenancy::postgres::Node::new(
        host,
        u16::try_from(port).unwrap(),
    ))
    .await;
    let sql = format!("SELECT ({what})::text FROM {shard} WHERE tenant_id = $1 ORDER BY 1");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn distributing_rows_again_changes_nothing_and_answers_the_same() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[NOTES])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    let t = l.tenants.create_in(name("t"), &container).await.unwrap();
    let ada = guard(&l, &t, "Ada").await;

    // Twice at once: the container's lock lines the two up, and the second finds every table
    // distributed already.
    let (first, second) = tokio::join!(
        l.tenants.distribute_rows(&container),
        l.tenants.distribute_rows(&container)
    );
    let first = first.unwrap();
    let mut want = RowSharding::default();
    want.by_tenant = vec!["guards".into(), "notes".into()];
    want.reference = vec!["kinds".into(), "plans".into()];
    assert_eq!(first, want);
    assert_eq!(second.unwrap(), want);
    let before = layout(&pool, &container).await;
    assert_eq!(
        before.1.len(),
        2,
        "guards → plans, notes → guards: {:?}",
        before.1
    );

    // And again, later: the same answer, and not a table, shard, placement or key changed.
    assert_eq!(l.tenants.distribute_rows(&container).await.unwrap(), want);
    assert_eq!(layout(&pool, &container).await, before);
    assert_eq!(shard_rows(&pool, &container, &t).await.1, ["Ada"]);
    assert_eq!(local_bytes(&pool, &container).await, 0);
    let found = RowGuard::find(&l.tenants, &t, ada.id).await.unwrap();
    assert_eq!(found.map(|g| g.into_inner().name), Some("Ada".to_owned()));
    guard(&l, &t, "Bo").await;
    assert_eq!(shard_rows(&pool, &container, &t).await.1, ["Ada", "Bo"]);
}

/// A table partitioned by date, with foreign keys into `guards` (on the tenant and the guard)
/// and into the reference table `plans`, two partitions; and a table with a foreign key into
/// the partitioned one. The tenant columns `varchar(63)`, as `guards`'s.
const VISITS: &str = "CREATE TABLE visits (
    tenant_id varchar(63) NOT NULL,
    id bigserial,
    guard_id bigint NOT NULL,
    at date NOT NULL,
    plan int NOT NULL DEFAULT 1 REFERENCES plans (id),
    PRIMARY KEY (tenant_id, id, at),
    FOREIGN KEY (tenant_id, guard_id) REFERENCES guards (tenant_id, id)
) PARTITION BY RANGE (at);
CREATE TABLE visits_2024 PARTITION OF visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE reports (
    tenant_id varchar(63) NOT NULL,
    id bigserial,
    visit_id bigint NOT NULL,
    visit_at date NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, visit_id, visit_at) REFERENCES visits (tenant_id, id, at)
)";
/// A later migration: a third partition.
const VISITS_2026: &str =
    "CREATE TABLE visits_2026 PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')";

/// `plans`, `guards` and [`VISITS`] with the tenant columns of type `key`, then `more`.
fn partitioned(key: &str, more: &[&str]) -> Vec<Migration> {
    [PLANS, GUARDS, VISITS]
        .iter()
        .chain(more)
        .enumerate()
        .map(|(i, sql)| {
            let sql = sql.replace("varchar(63)", key);
            migration(1 + i as i64, MigrationType::Simple, &sql)
        })
        .collect()
}

/// A container of [`partitioned`] tables keyed by `key`, two row-level tenants (t, o) with a
/// guard, a visit in each partition and a report each, distributed by the tenant column: the
/// partitioned table, its partitions and the report table colocated with guards, every foreign
/// key as before, every row on its tenant's shard. Returns the guard of t.
async fn distributed_partitions(pool: &Pool, key: &str) -> (Lifecycle, Tenant, Tenant, i64) {
    let l = Lifecycle::new(pool, partitioned(key, &[])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    let c = container.quoted();
    let t = l.tenants.create_in(name("t"), &container).await.unwrap();
    let o = l.tenants.create_in(name("o"), &container).await.unwrap();
    let mut t_guard = 0;
    for (tenant, guard_name) in [(&t, "Ada"), (&o, "Cy")] {
        let g = guard(&l, tenant, guard_name).await;
        if tenant == &t {
            t_guard = g.id;
        }
        let visits = format!(
            "INSERT INTO {c}.visits (tenant_id, guard_id, at) \
             VALUES ($1, $2, '2024-05-01'), ($1, $2, '2025-05-01') RETURNING id"
        );
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(visits))
            .bind(tenant.as_str())
            .bind(g.id)
            .fetch_all(pool)
            .await
            .unwrap();
        let report = format!(
            "INSERT INTO {c}.reports (tenant_id, visit_id, visit_at) VALUES ($1, $2, '2025-05-01')"
        );
        sqlx::query(sqlx::AssertSqlSafe(report))
            .bind(tenant.as_str())
            .bind(ids[1])
            .execute(pool)
            .await
            .unwrap();
    }

    let (_, keys_before) = layout(pool, &container).await;
    let spread = l.tenants.distribute_rows(&container).await.unwrap();
    assert_eq!(
        spread.by_tenant,
        ["guards", "reports", "visits", "visits_2024", "visits_2025"]
    );
    assert_eq!(spread.reference, ["plans"]);
    let (_, _, group) = held(pool, &container, "guards").await.unwrap();
    for table in ["visits", "visits_2024", "visits_2025", "reports"] {
        let (method, column, its_group) = held(pool, &container, table).await.unwrap();
        assert_eq!(
            (method.as_str(), column.as_deref(), its_group),
            ("h", Some("tenant_id"), group),
            "{table} distributed by the tenant column, colocated with guards"
        );
    }
    // The keys are there again, as they were: the partitioned table's two (each partition
    // inheriting them), and the key into it (with the copies PostgreSQL keeps per partition).
    let (_, keys) = layout(pool, &container).await;
    assert_eq!(keys, keys_before);
    let on = |table: &str| {
        let prefix = format!("{}.{table} ", container.as_str());
        keys.iter().filter(|k| k.starts_with(&prefix)).count()
    };
    assert_eq!(
        [
            on("guards"),
            on("visits"),
            on("visits_2024"),
            on("visits_2025"),
            on("reports")
        ],
        [1, 2, 2, 2, 3],
        "{keys:?}"
    );

    // Every row is on its tenant's shard (the partitions' shards under the parent's), none
    // left on the coordinator.
    for tenant in [&t, &o] {
        assert_eq!(
            on_shard(pool, &container, "visits", tenant, "at").await,
            ["2024-05-01", "2025-05-01"]
        );
        assert_eq!(
            on_shard(pool, &container, "reports", tenant, "visit_at").await,
            ["2025-05-01"]
        );
    }
    let local: i64 = sqlx::query_scalar(
        "SELECT sum(pg_relation_size(c.oid))::int8 FROM pg_catalog.pg_class c \
         WHERE c.relnamespace = to_regnamespace($1) AND c.relkind = 'r'",
    )
    .bind(container.as_str())
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(local, 0, "no rows left in the coordinator's own tables");

    // The keys hold on the shards: a visit of a guard its tenant does not have is refused, a
    // report of a visit that is not there too.
    for (sql, tenant, key) in [
        (
            format!("INSERT INTO {c}.visits (tenant_id, guard_id, at) VALUES ($1, $2, '2024-06-01')"),
            &o,
            t_guard,
        ),
        (
            format!(
                "INSERT INTO {c}.reports (tenant_id, visit_id, visit_at) VALUES ($1, $2, '2024-06-01')"
            ),
            &t,
            -1,
        ),
    ] {
        let refused = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(key)
            .execute(pool)
            .await
            .unwrap_err();
        let code = refused.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("23503"), "{refused}");
    }
    (l, container, t, t_guard)
}

#[tokio::test]
async fn a_partitioned_table_with_foreign_keys_is_distributed_with_its_partitions_and_rows() {
    let pool = pool().await;
    let (l, container, _, _) = distributed_partitions(&pool, "varchar(63)").await;

    // A later partition: Citus cannot check its key into guards on varchar columns. A typed
    // refusal with advice, the migration rolled back.
    let newer = l.with_migrations(&pool, partitioned("varchar(63)", &[VISITS_2026]));
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    match failed[0].1 {
        Error::Refused { source, .. } => match source.downcast_ref::<CitusError>() {
            Some(CitusError::Unsupported {
                version: 4,
                refusal: CitusRefusal::ForeignKeyCheck,
                ..
            }) => {}
            other => panic!("expected the ForeignKeyCheck refusal, got {other:?}"),
        },
        other => panic!("expected Error::Refused, got {other:?}"),
    }
    assert!(held(&pool, &container, "visits_2026").await.is_none());
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{}.visits_2026", container.quoted()))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!exists, "the migration was rolled back");
}

#[tokio::test]
async fn a_later_partition_of_a_table_keyed_by_text_is_distributed_with_it() {
    let pool = pool().await;
    let (l, container, t, t_guard) = distributed_partitions(&pool, "text").await;
    let newer = l.with_migrations(&pool, partitioned("text", &[VISITS_2026]));
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    assert!(
        report.is_success(),
        "{:?}",
        report.failed().collect::<Vec<_>>()
    );
    let (_, _, group) = held(&pool, &container, "guards").await.unwrap();
    let (method, column, its_group) = held(&pool, &container, "visits_2026").await.unwrap();
    assert_eq!(
        (method.as_str(), column.as_deref(), its_group),
        ("h", Some("tenant_id"), group)
    );
    let insert = format!(
        "INSERT INTO {}.visits (tenant_id, guard_id, at) VALUES ($1, $2, '2026-02-01')",
        container.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(t.as_str())
        .bind(t_guard)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        on_shard(&pool, &container, "visits", &t, "at").await,
        ["2024-05-01", "2025-05-01", "2026-02-01"]
    );
}

/// What a writer task acknowledged: its tenant, the guards it inserted (by name), the last
/// position its `counter` guard was updated to, and the errors it was answered.
type Written = (Tenant, Vec<String>, usize, Vec<String>);

/// Writes from other tasks while `distribute_rows` runs: each task inserts guards of its tenant
/// and updates its `counter` guard, one statement after the other, through the library (cached
/// prepared statements). Some of them wait for the distribute's locks (seen on the server);
/// afterwards every acknowledged insert and the last acknowledged update are on the tenant's
/// shard, read on the worker, and nothing is left on the coordinator.
#[tokio::test]
async fn writes_while_the_rows_are_distributed_are_all_kept() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[])).await;
    let container = l.tenants.create(name("rows")).await.unwrap();
    let mut tenants = Vec::new();
    for i in 0..3 {
        let t = l
            .tenants
            .create_in(name(&format!("w{i}")), &container)
            .await;
        tenants.push(t.unwrap());
    }
    // The writers' pool is named, so that their waits can be told apart on the server.
    let app = name("writers");
    let options: PgConnectOptions = super::citus_url().parse().unwrap();
    let writers_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.application_name(&app))
        .await
        .unwrap();
    let writers = l.with_migrations(&writers_pool, migrations(&[]));
    let writing = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    for t in &tenants {
        let (h, t, writing) = (writers.clone(), t.clone(), writing.clone());
        tasks.push(tokio::spawn(async move {
            let mut counter = RowGuard::new("counter", "0").insert(&h, &t).await.unwrap();
            let (mut inserted, mut updated, mut errors) = (Vec::new(), 0, Vec::new());
            let mut i: usize = 0;
            while writing.load(Ordering::SeqCst) {
                i += 1;
                let name = format!("w{i:05}");
                match RowGuard::new(&name, "Guard").insert(&h, &t).await {
                    Ok(_) => inserted.push(name),
                    Err(e) => errors.push(format!("insert {name}: {e:?}")),
                }
                counter.position = i.to_string();
                match counter.update(&h, &t).await {
                    Ok(()) => updated = i,
                    Err(e) => errors.push(format!("update {i}: {e:?}")),
                }
            }
            let written: Written = (t, inserted, updated, errors);
            written
        }));
    }
    // Waits of the writers on a lock, polled from a connection of its own until told to stop.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (watching, app) = (watching.clone(), app.clone());
        let pool = super::pool_with(1).await;
        tokio::spawn(async move {
            let mut waits = 0;
            while watching.load(Ordering::SeqCst) {
                let waiting: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
                     WHERE application_name = $1 AND wait_event_type = 'Lock')",
                )
                .bind(&app)
                .fetch_one(&pool)
                .await
                .unwrap();
                waits += usize::from(waiting);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            waits
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let spread = l.tenants.distribute_rows(&container).await.unwrap();
    let took = started.elapsed();
    watching.store(false, Ordering::SeqCst);
    let waits = watcher.await.unwrap();
    assert_eq!(spread.by_tenant, ["guards"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    writing.store(false, Ordering::SeqCst);
    let mut written = Vec::new();
    for task in tasks {
        written.push(task.await.unwrap());
    }
    let (inserts, errors): (usize, Vec<&String>) = (
        written.iter().map(|w| w.1.len()).sum(),
        written.iter().flat_map(|w| &w.3).collect(),
    );
    eprintln!(
        "distribute_rows took {took:?}; {inserts} inserts acknowledged, {waits} polls saw a \
         writer waiting on a lock; errors: {errors:#?}"
    );
    assert!(waits > 0, "no write waited for distribute_rows");
    assert!(errors.is_empty(), "writes refused: {errors:#?}");

    // Every acknowledged write is on its tenant's shard, once, and nothing else.
    for (t, inserted, updated, _) in &written {
        let mut want: Vec<String> = inserted.iter().map(|n| format!("{n}:Guard")).collect();
        want.push(format!("counter:{updated}"));
        want.sort();
        let stored = on_shard(&pool, &container, "guards", t, "name || ':' || position").await;
        assert_eq!(stored, want, "{t}'s shard");
        assert!(inserted.len() > 2, "{t}'s writer wrote before and after");
    }
    assert_eq!(local_bytes(&pool, &container).await, 0);
}
