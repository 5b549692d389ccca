//! Row-level security on Citus: the promises `rls.rs` makes on PostgreSQL, kept in a container
//! that is a distributed schema (all of its tenants on one worker) and in one distributed by
//! the tenant column (`distribute_rows`: its tenants on shards over every worker). The
//! policies run on the workers, against the shards: they must be there (checked on every shard
//! placement), and each statement's tenant must reach them.

use sqlx::{AssertSqlSafe, Executor};
use tenancy::postgres::{CitusError, MoveMode};
use tenancy::{Error, Tenant, Tenants};

use super::rows::{is_distributed_schema, migrations, shard_rows};
use super::{citus_url, pool, Pool};
use crate::lifecycle_support::{migrator, Lifecycle};
use crate::rls::{
    owned_by_the_app, owner_is_held, privileged_roles_refused,
    promote_waits_for_the_open_transaction, renamed_by_a_held_role, secure, secured_handle,
    sees_that_tenant_only, two_tenants, with_tenant_column, AppRole,
};

/// How many shard placements `container.guards` has, and whether each has row-level security
/// enabled and forced and the `tenancy_tenant` policy (asked on the workers, shard by shard).
async fn policies_on_shards(pool: &Pool, container: &Tenant) -> (i64, bool) {
    sqlx::query_as(
        "SELECT count(*), bool_and(success AND result = 't') FROM run_command_on_shards($1, \
         $$SELECT c.relrowsecurity AND c.relforcerowsecurity AND EXISTS (SELECT 1 \
         FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenancy_tenant') \
         FROM pg_catalog.pg_class c WHERE c.oid = '%1$s'::regclass$$)",
    )
    .bind(format!("{}.guards", container.quoted()))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Two row-level tenants (a: "Abu", b: "Bea") in a container that is a distributed schema
/// (`by_rows` false) or distributed by the tenant column (true, after the rows were written),
/// under the policies, which reach every shard; and the application's role.
async fn secured(by_rows: bool) -> (Pool, Lifecycle, Tenant, Tenant, Tenant, AppRole) {
    let admin = pool().await;
    let (l, container, a, b) = match by_rows {
        false => two_tenants(&admin, with_tenant_column()).await,
        true => {
            let made = two_tenants(&admin, migrations(&[])).await;
            let spread = made.0.tenants.distribute_rows(&made.1).await.unwrap();
            assert_eq!(spread.by_tenant, ["guards"]);
            made
        }
    };
    assert_eq!(is_distributed_schema(&admin, &container).await, !by_rows);
    let app = secure(&l, &admin, &citus_url(), &container).await;
    let (shards, all) = policies_on_shards(&admin, &container).await;
    assert_eq!(shards, if by_rows { 32 } else { 1 }, "shard placements");
    assert!(
        all,
        "every shard placement has the policy, enabled and forced"
    );
    (admin, l, container, a, b, app)
}

#[tokio::test]
async fn hand_written_sql_sees_one_tenant_in_a_distributed_schema_container() {
    let (_admin, l, container, a, b, app) = secured(false).await;
    sees_that_tenant_only(&l, &container, &a, &b, &app).await;
}

#[tokio::test]
async fn hand_written_sql_sees_one_tenant_in_a_container_distributed_by_rows() {
    let (admin, l, container, a, b, app) = secured(true).await;
    sees_that_tenant_only(&l, &container, &a, &b, &app).await;
    // The rows the library wrote under the policies are on their tenants' shards.
    assert_eq!(shard_rows(&admin, &container, &b).await.1, ["Bea", "Cai"]);
    assert_eq!(shard_rows(&admin, &container, &a).await.1, ["Abu"]);
}

#[tokio::test]
async fn the_tables_owner_is_held_in_a_distributed_schema_container() {
    let (_admin, l, container, a, _b, app) = secured(false).await;
    owner_is_held(&l, &container, &a, &app).await;
}

#[tokio::test]
async fn the_tables_owner_is_held_in_a_container_distributed_by_rows() {
    let (_admin, l, container, a, _b, app) = secured(true).await;
    owner_is_held(&l, &container, &a, &app).await;
}

/// A rename by a role the policies hold (the tables' owner) takes the tenant's rows in a
/// container that is a distributed schema (an `UPDATE` on the worker).
#[tokio::test]
async fn a_rename_by_a_held_role_takes_its_rows_in_a_distributed_schema_container() {
    let (_admin, l, container, a, b, app) = secured(false).await;
    renamed_by_a_held_role(&l, &container, &a, &b, &app).await;
}

/// Where the tenant column is the distribution column, Citus moves the renamed rows to their
/// new shard with `COPY`, which the policies refuse for a role they hold: the rename is
/// `Unsupported`, naming the table, and nothing changes.
#[tokio::test]
async fn a_rename_by_a_held_role_is_refused_whole_in_a_container_distributed_by_rows() {
    let (admin, l, container, a, _b, app) = secured(true).await;
    owned_by_the_app(&l, &container, &app).await;
    let tenants = secured_handle(&l, &app).await;
    let new = Tenant::new(tenancy_testdb::unique_name("renamed")).unwrap();
    match tenants.rename(a.as_str(), new.as_str()).await {
        Err(Error::Unsupported {
            operation: "rename",
            reason,
        }) => assert!(
            reason.contains("\"guards\"") && reason.contains("COPY"),
            "{reason}"
        ),
        other => panic!("expected the rename refused, got {other:?}"),
    }
    assert_eq!(shard_rows(&admin, &container, &a).await.1, ["Abu"]);
    assert!(shard_rows(&admin, &container, &new).await.1.is_empty());
    assert!(l.tenants.exists(a.as_str()).await.unwrap());
    assert!(!l.tenants.exists(new.as_str()).await.unwrap());
}

/// A promote waits for the tenant's open transactions under row security, as on PostgreSQL
/// (`rls::a_promote_waits_for_the_tenants_open_transaction_under_row_security`), in a container
/// that is a distributed schema.
#[tokio::test]
async fn a_promote_waits_for_the_tenants_open_transaction_in_a_distributed_schema_container() {
    let (_admin, l, container, a, _b, app) = secured(false).await;
    promote_waits_for_the_open_transaction(&l, &container, &a, &app).await;
}

/// The same in a container distributed by the tenant column.
#[tokio::test]
async fn a_promote_waits_for_the_tenants_open_transaction_in_a_container_distributed_by_rows() {
    let (_admin, l, container, a, _b, app) = secured(true).await;
    promote_waits_for_the_open_transaction(&l, &container, &a, &app).await;
}

#[tokio::test]
async fn a_superuser_or_bypassrls_pool_is_refused_on_citus() {
    privileged_roles_refused(&pool().await, &citus_url()).await;
}

/// The policies put on before `distribute_rows`, which then runs as the tables' owner, a role
/// the forced policies hold: Citus copies the rows into new tables and into the shards with
/// statements those policies would filter (no tenant said: no row), so every row must still be
/// there afterwards, on its tenant's shard, and the policies on every shard.
#[tokio::test]
async fn distributing_rows_under_forced_policies_keeps_every_row_and_the_policies() {
    let admin = pool().await;
    let (l, container, a, b) = two_tenants(&admin, migrations(&[])).await;
    l.tenants.enable_row_security(&container).await.unwrap();
    // The owner: no SUPERUSER, no BYPASSRLS, so FORCE holds it.
    let owner = AppRole::new(&admin, &citus_url(), &l.registry, &container).await;
    let c = container.quoted();
    // One statement per query string: Citus refuses these DDL in a multi-statement one.
    for owned in [
        format!("SCHEMA {c}"),
        format!("TABLE {c}.guards"),
        format!("TABLE {c}.plans"),
    ] {
        let alter = format!("ALTER {owned} OWNER TO {}", owner.name);
        admin.execute(AssertSqlSafe(alter)).await.unwrap();
    }
    let as_owner = Tenants::new(owner.pool.clone(), migrator(Vec::new()))
        .unwrap()
        .with_registry(&l.registry)
        .unwrap();
    let spread = as_owner.distribute_rows(&container).await.unwrap();
    assert_eq!(spread.by_tenant, ["guards"]);
    assert!(!is_distributed_schema(&admin, &container).await);

    let all: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {c}.guards")))
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(all, 2, "every row is still there (read by the superuser)");
    assert_eq!(shard_rows(&admin, &container, &a).await.1, ["Abu"]);
    assert_eq!(shard_rows(&admin, &container, &b).await.1, ["Bea"]);
    let plans: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {c}.plans")))
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(plans, 1, "the reference table's row too");
    let (shards, forced) = policies_on_shards(&admin, &container).await;
    assert_eq!(shards, 32);
    assert!(forced, "the policies, enabled and forced, on every shard");

    let app = AppRole::new(&admin, &citus_url(), &l.registry, &container).await;
    sees_that_tenant_only(&l, &container, &a, &b, &app).await;
}

/// A container under the policies, moved to another worker by its tables' owner, a role the
/// forced policies hold: Citus would copy the rows with that role's statements and lose them
/// all, so the move is refused, naming the role and the table, and nothing moves. A superuser
/// moves it with every row.
#[tokio::test]
async fn a_move_by_a_role_the_policies_hold_is_refused_and_a_superusers_keeps_every_row() {
    let admin = pool().await;
    let (l, container, a, b) = two_tenants(&admin, with_tenant_column()).await;
    l.tenants.enable_row_security(&container).await.unwrap();
    let owner = AppRole::new(&admin, &citus_url(), &l.registry, &container).await;
    let c = container.quoted();
    for owned in [format!("SCHEMA {c}"), format!("TABLE {c}.guards")] {
        let alter = format!("ALTER {owned} OWNER TO {}", owner.name);
        admin.execute(AssertSqlSafe(alter)).await.unwrap();
    }
    // What a role needs to move tenants (the transfer mode is a type of schema `citus`).
    let usage = format!("GRANT USAGE ON SCHEMA citus TO {}", owner.name);
    admin.execute(AssertSqlSafe(usage)).await.unwrap();
    let as_owner = Tenants::new(owner.pool.clone(), migrator(Vec::new()))
        .unwrap()
        .with_registry(&l.registry)
        .unwrap();
    let from = l
        .tenants
        .placement_of(container.as_str())
        .await
        .unwrap()
        .unwrap();
    let nodes = l.tenants.nodes().await.unwrap();
    let to = nodes.iter().find(|n| **n != from).unwrap().clone();
    let all = |pool: Pool| {
        let sql = format!("SELECT count(*) FROM {c}.guards");
        async move {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };

    for mode in [MoveMode::BlockWrites, MoveMode::Logical] {
        match as_owner.move_to_with(container.as_str(), &to, mode).await {
            Err(Error::Refused {
                operation: "move",
                source,
                ..
            }) => match source.downcast_ref::<CitusError>() {
                Some(CitusError::HeldByRowSecurity { role, tables }) => {
                    assert_eq!(
                        (role, tables.as_slice()),
                        (&owner.name, &["guards".to_owned()][..])
                    );
                }
                other => panic!("expected HeldByRowSecurity, got {other:?}"),
            },
            other => panic!("expected the move refused, got {other:?}"),
        }
        assert_eq!(
            l.tenants.placement_of(container.as_str()).await.unwrap(),
            Some(from.clone())
        );
        assert_eq!(all(admin.clone()).await, 2);
    }

    l.tenants.move_to(container.as_str(), &to).await.unwrap();
    assert_eq!(
        l.tenants.placement_of(container.as_str()).await.unwrap(),
        Some(to)
    );
    assert_eq!(
        all(admin.clone()).await,
        2,
        "every row moved (read by the superuser)"
    );
    let app = AppRole::new(&admin, &citus_url(), &l.registry, &container).await;
    sees_that_tenant_only(&l, &container, &a, &b, &app).await;
}
