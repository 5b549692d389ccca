//! `distribute_rows`: a container of row-level tenants whose tables are distributed by the
//! tenant column (Citus's row-based sharding) instead of living whole on one worker. Where
//! the rows are is read from Citus's catalog and from the workers' shards directly, bypassing
//! the coordinator.

use sqlx::migrate::{Migration, MigrationType};
use tenancy::postgres::{CitusError, RowSharding};
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
    let note = format!(
        "INSERT INTO {}.notes (tenant_id, guard_id, body) VALUES ($1, $2, 'hi')",
        container.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(note))
        .bind(t.as_str())
        .bind(ada.id)
        .execute(&pool)
        .await
        .unwrap();

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
