//! PostgreSQL's row-level security as a second wall for row-level tenants: policies from
//! `Tenants::enable_row_security`, the tenant said per transaction by a handle
//! `with_row_security`, a role that is a superuser or has BYPASSRLS refused. The application
//! connects as a role of its own (without SUPERUSER and BYPASSRLS), made for each test and
//! dropped after it. The promises every server keeps are `pub(crate)` bodies taking the server
//! (its admin pool and URL), which the Citus tests (`backends::citus::rls`) run there too.

use sqlx::migrate::{Migration, MigrationType};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor};
use tenancy::{Error, Tenant, TenantModel, Tenants};

use crate::assert_err;
use crate::lifecycle_support::{migration, migrator, v1, Lifecycle};
use crate::support::{pool, RowGuard};

/// A role for the application: login, no superuser, no BYPASSRLS, allowed to read the
/// registry and to read and write `container`'s tables. Dropped with its grants (and whatever
/// it was made to own) at the end, on the server of `url`.
pub(crate) struct AppRole {
    pub name: String,
    pub admin: PgPool,
    pub pool: PgPool,
    url: String,
}

/// Drops the roles runs of these tests left behind when they were killed: named
/// `app_<pid>_…` by `tenancy_testdb::unique_name`, their process gone (where `/proc` tells).
async fn sweep_left_roles(admin: &PgPool) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname ~ '^app_[0-9]+_'",
    )
    .fetch_all(admin)
    .await
    .unwrap();
    for role in roles {
        let pid = role.split('_').nth(1).unwrap_or_default();
        if std::path::Path::new("/proc").join(pid).exists() {
            continue;
        }
        let _ = admin
            .execute(AssertSqlSafe(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
                 DROP OWNED BY {role}; DROP ROLE IF EXISTS {role}"
            )))
            .await;
    }
}

impl AppRole {
    /// The application's role on the server `admin` reaches at `url`.
    pub(crate) async fn new(admin: &PgPool, url: &str, registry: &str, container: &Tenant) -> Self {
        AppRole::with(admin, url, registry, container, "NOSUPERUSER NOBYPASSRLS").await
    }

    /// A role with `attributes` (e.g. `BYPASSRLS`) and the application's grants.
    pub(crate) async fn with(
        admin: &PgPool,
        url: &str,
        registry: &str,
        container: &Tenant,
        attributes: &str,
    ) -> Self {
        sweep_left_roles(admin).await;
        let name = tenancy_testdb::unique_name("app");
        let c = container.quoted();
        let r = format!("\"{registry}\"");
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE ROLE {name} LOGIN {attributes};
                 GRANT USAGE ON SCHEMA {r}, {c} TO {name};
                 GRANT SELECT ON ALL TABLES IN SCHEMA {r} TO {name};
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {c} TO {name};
                 GRANT USAGE ON ALL SEQUENCES IN SCHEMA {c} TO {name};"
            )))
            .await
            .unwrap();
        let options: PgConnectOptions = url.parse().unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.username(&name))
            .await
            .unwrap();
        AppRole {
            name,
            admin: admin.clone(),
            pool,
            url: url.to_owned(),
        }
    }
}

impl Drop for AppRole {
    /// The test's runtime is blocked here, so the role's connections are ended by the server
    /// rather than returned to their pool.
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = self.url.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let admin = PgPool::connect(&url).await.unwrap();
                let _ = admin
                    .execute(AssertSqlSafe(format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}';
                         DROP OWNED BY {name}; DROP ROLE IF EXISTS {name}"
                    )))
                    .await;
                admin.close().await;
            })
        })
        .join()
        .unwrap();
    }
}

/// The migrations of the PostgreSQL tests: v1's `guards` with a tenant column.
pub(crate) fn with_tenant_column() -> Vec<Migration> {
    let mut migrations = v1();
    migrations.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE guards ADD COLUMN tenant_id text NOT NULL DEFAULT ''",
    ));
    migrations
}

/// A container made by `migrations` (its `guards` with the tenant column and no row), and two
/// row-level tenants in it, a holding a guard "Abu" and b one "Bea".
pub(crate) async fn two_tenants(
    admin: &PgPool,
    migrations: Vec<Migration>,
) -> (Lifecycle, Tenant, Tenant, Tenant) {
    let l = Lifecycle::new(admin, migrations).await;
    let container = l
        .tenants
        .create(tenancy_testdb::unique_name("rls"))
        .await
        .unwrap();
    admin
        .execute(AssertSqlSafe(format!(
            "DELETE FROM {}.guards",
            container.quoted()
        )))
        .await
        .unwrap();
    let a = l
        .tenants
        .create_in(tenancy_testdb::unique_name("a"), &container)
        .await
        .unwrap();
    let b = l
        .tenants
        .create_in(tenancy_testdb::unique_name("b"), &container)
        .await
        .unwrap();
    for (t, name) in [(&a, "Abu"), (&b, "Bea")] {
        RowGuard::new(name, "Guard")
            .insert(&l.tenants, t)
            .await
            .unwrap();
    }
    (l, container, a, b)
}

/// The policies put on `container` (its `guards` covered), and the application's role.
pub(crate) async fn secure(
    l: &Lifecycle,
    admin: &PgPool,
    url: &str,
    container: &Tenant,
) -> AppRole {
    let covered = l.tenants.enable_row_security(container).await.unwrap();
    assert_eq!(covered, ["guards"]);
    AppRole::new(admin, url, &l.registry, container).await
}

/// A container with the tenant column, two row-level tenants each holding a guard, the policies
/// on, and the application's role.
async fn secured() -> (Lifecycle, Tenant, Tenant, Tenant, AppRole) {
    let admin = pool().await;
    let (l, container, a, b) = two_tenants(&admin, with_tenant_column()).await;
    let app = secure(&l, &admin, &crate::support::database_url(), &container).await;
    (l, container, a, b, app)
}

/// A handle of the application's role on the test's registry, with row security.
pub(crate) async fn secured_handle(l: &Lifecycle, app: &AppRole) -> Tenants {
    Tenants::new(app.pool.clone(), migrator(Vec::new()))
        .unwrap()
        .with_registry(&l.registry)
        .unwrap()
        .with_row_security()
        .await
        .unwrap()
}

/// The names in the container's `guards` that a plain `SELECT` on `executor` sees.
pub(crate) async fn seen<'e>(
    executor: impl Executor<'e, Database = sqlx::Postgres>,
    container: &Tenant,
) -> Vec<String> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT name FROM {}.guards ORDER BY name",
        container.quoted()
    )))
    .fetch_all(executor)
    .await
    .unwrap()
}

#[tokio::test]
async fn hand_written_sql_in_a_tenants_transaction_sees_that_tenant_only() {
    let (l, container, a, b, app) = secured().await;
    sees_that_tenant_only(&l, &container, &a, &b, &app).await;
}

/// Hand-written SQL in a transaction of `begin_rows(a)` sees and writes a's rows only, nothing
/// without it; the library's statements say their tenant themselves; a statement over several
/// tenants is refused. `a` holds "Abu", `b` "Bea".
pub(crate) async fn sees_that_tenant_only(
    l: &Lifecycle,
    container: &Tenant,
    a: &Tenant,
    b: &Tenant,
    app: &AppRole,
) {
    let (container, a, b) = (container.clone(), a.clone(), b.clone());
    let tenants = secured_handle(l, app).await;
    assert!(tenants.has_row_security());

    // Without the setting, the role sees no row at all.
    assert!(seen(&app.pool, &container).await.is_empty());
    let mut tx = tenants.begin_rows(&a).await.unwrap();
    assert_eq!(seen(&mut *tx, &container).await, ["Abu"]);
    // A hand-written write of another tenant's row is refused by the policy's check.
    let other = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {}.guards (name, position, tenant_id) VALUES ('Mallory', 'x', $1)",
        container.quoted()
    )))
    .bind(b.as_str())
    .execute(&mut *tx)
    .await;
    assert!(other.is_err(), "{other:?}");
    tx.rollback().await.unwrap();
    let mut tx = tenants.begin_rows(&b).await.unwrap();
    assert_eq!(seen(&mut *tx, &container).await, ["Bea"]);
    tx.rollback().await.unwrap();

    // The library's statements through the handle say their tenant themselves.
    assert_eq!(RowGuard::query(&a).count(&tenants).await.unwrap(), 1);
    RowGuard::new("Cai", "Guard")
        .insert(&tenants, &b)
        .await
        .unwrap();
    let names: Vec<String> = RowGuard::query(&b)
        .fetch_all(&tenants)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.into_inner().name)
        .collect();
    assert_eq!(names, ["Bea", "Cai"]);
    // The same statements from a handle that does not say them see nothing.
    let unsaid = Tenants::new(app.pool.clone(), migrator(Vec::new()))
        .unwrap()
        .with_registry(&l.registry)
        .unwrap();
    assert_eq!(RowGuard::query(&a).count(&unsaid).await.unwrap(), 0);
    // A statement over several row-level tenants cannot be said in one setting.
    assert_err!(
        RowGuard::query_across(&[a.clone(), b.clone()])
            .count_by_tenant(&tenants)
            .await,
        Error::NotRowLevel { .. }
    );
}

/// A promote waits for the tenant's open transactions under row security (the shared lock
/// `enter_rows` holds to their end), so none of them reads the container half-way.
#[tokio::test]
async fn a_promote_waits_for_the_tenants_open_transaction_under_row_security() {
    let (l, container, a, _b, app) = secured().await;
    promote_waits_for_the_open_transaction(&l, &container, &a, &app).await;
}

/// The body of [`a_promote_waits_for_the_tenants_open_transaction_under_row_security`]: `a`,
/// a row-level tenant of `container` holding one guard, Abu, under the policies.
pub(crate) async fn promote_waits_for_the_open_transaction(
    l: &Lifecycle,
    container: &Tenant,
    a: &Tenant,
    app: &AppRole,
) {
    let tenants = secured_handle(l, app).await;
    let mut tx = tenants.begin_rows(a).await.unwrap();
    assert_eq!(seen(&mut *tx, container).await, ["Abu"]);
    // Saying the tenant locks nothing that needs a transaction id: a reading transaction
    // stays read-only (no commit to flush, fine on a standby).
    let xid: Option<i64> = sqlx::query_scalar("SELECT txid_current_if_assigned()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(xid, None);
    let admin = l.tenants.clone();
    let name = a.as_str().to_owned();
    let promote = tokio::spawn(async move { admin.promote(&name).await });
    // It waits on the transaction's advisory lock (seen by the server), and stays unfinished.
    let mut waiting = false;
    for _ in 0..200 {
        assert!(
            !promote.is_finished(),
            "the promote went on under an open transaction of a"
        );
        let waiters: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND wait_event = 'advisory' AND strpos(query, $1) > 0",
        )
        .bind(format!("tenancy-rows:{}:", l.registry))
        .fetch_one(l.tenants.pool())
        .await
        .unwrap();
        if waiters > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        waiting,
        "the promote never waited on the transaction's lock"
    );
    assert!(!promote.is_finished());
    assert_eq!(
        seen(&mut *tx, container).await,
        ["Abu"],
        "still whole inside it"
    );
    tx.commit().await.unwrap();
    assert_eq!(promote.await.unwrap().unwrap().rows, 1);
}

/// Under row security, every statement of a row-level tenant first checks that the tenant is
/// still placed in the container it names: after a promote, a `Tenant` resolved before it is
/// refused for reads as well as writes, instead of reading the container's (now empty) rows.
#[tokio::test]
async fn a_stale_placement_is_refused_for_reads_and_writes_after_a_promote() {
    let (l, container, a, b, app) = secured().await;
    let tenants = secured_handle(&l, &app).await;
    let abu = RowGuard::query(&a).fetch_all(&tenants).await.unwrap();
    assert_eq!(abu.len(), 1);

    let moved = l.tenants.promote(a.as_str()).await.unwrap();
    assert_eq!(moved.rows, 1);
    assert_err!(
        RowGuard::query(&a).count(&tenants).await,
        Error::NotPlaced { .. }
    );
    assert_err!(
        RowGuard::find(&tenants, &a, abu[0].id).await,
        Error::NotPlaced { .. }
    );
    assert_err!(
        RowGuard::new("Stale", "Guard").insert(&tenants, &a).await,
        Error::NotPlaced { .. }
    );
    assert_err!(tenants.begin_rows(&a).await, Error::NotPlaced { .. });
    assert!(!tenants.tenant(a.as_str()).await.unwrap().is_row_level());
    // b, still placed there, goes on.
    assert_eq!(RowGuard::query(&b).count(&tenants).await.unwrap(), 1);
    assert_eq!(seen(&l.tenants.pool().clone(), &container).await, ["Bea"]);
}

#[tokio::test]
async fn the_tables_owner_is_held_to_the_policies_too() {
    let (l, container, a, _b, app) = secured().await;
    owner_is_held(&l, &container, &a, &app).await;
}

/// With the application's role made the owner of `guards`, `FORCE` still holds it to the
/// policies: nothing without a tenant said, a's row ("Abu") alone in a's transaction.
pub(crate) async fn owner_is_held(l: &Lifecycle, container: &Tenant, a: &Tenant, app: &AppRole) {
    app.admin
        .execute(AssertSqlSafe(format!(
            "ALTER TABLE {}.guards OWNER TO {}",
            container.quoted(),
            app.name
        )))
        .await
        .unwrap();
    assert!(
        seen(&app.pool, container).await.is_empty(),
        "FORCE holds the owner"
    );
    let tenants = secured_handle(l, app).await;
    let mut tx = tenants.begin_rows(a).await.unwrap();
    assert_eq!(seen(&mut *tx, container).await, ["Abu"]);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn a_superuser_or_bypassrls_pool_is_refused_naming_its_role() {
    let admin = pool().await;
    privileged_roles_refused(&admin, &crate::support::database_url()).await;
}

/// `with_row_security` refuses a pool whose role is a superuser (`admin`'s) or has
/// `BYPASSRLS`, with `Error::Unsupported` naming the role.
pub(crate) async fn privileged_roles_refused(admin: &PgPool, url: &str) {
    let l = Lifecycle::new(admin, with_tenant_column()).await;
    let container = l
        .tenants
        .create(tenancy_testdb::unique_name("rls"))
        .await
        .unwrap();
    let err = l.tenants.clone().with_row_security().await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(admin)
        .await
        .unwrap();
    assert!(err.to_string().contains(&format!("\"{role}\"")), "{err}");
    assert!(err.to_string().contains("superuser"), "{err}");

    let bypass = AppRole::with(admin, url, &l.registry, &container, "NOSUPERUSER BYPASSRLS").await;
    let handle = Tenants::new(bypass.pool.clone(), migrator(Vec::new()))
        .unwrap()
        .with_registry(&l.registry)
        .unwrap();
    let err = handle.with_row_security().await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("\"{}\"", bypass.name)),
        "{err}"
    );
    assert!(err.to_string().contains("BYPASSRLS"), "{err}");
}

/// The shared table and the registry's tables given to the application's role, which the
/// policies hold (`FORCE`): a role that runs the lifecycle itself.
pub(crate) async fn owned_by_the_app(l: &Lifecycle, container: &Tenant, app: &AppRole) {
    let registry = format!("\"{}\"", l.registry);
    for sql in [
        format!(
            "ALTER TABLE {}.guards OWNER TO {}",
            container.quoted(),
            app.name
        ),
        format!("GRANT USAGE, CREATE ON SCHEMA {registry} TO {}", app.name),
        format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA {registry} TO {}",
            app.name
        ),
        format!(
            "GRANT ALL ON ALL SEQUENCES IN SCHEMA {registry} TO {}",
            app.name
        ),
    ] {
        app.admin.execute(AssertSqlSafe(sql)).await.unwrap();
    }
}

/// How many rows of `tenant` `container`'s `guards` holds, read as the administrator.
async fn rows_of(app: &AppRole, container: &Tenant, tenant: &Tenant) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.guards WHERE tenant_id = $1",
        container.quoted()
    )))
    .bind(tenant.as_str())
    .fetch_one(&app.admin)
    .await
    .unwrap()
}

/// Dropping a row-level tenant as a role the policies hold: its rows go with it, never the
/// registration gone and its rows left (a tenant created later under its name would read
/// them). Seen failing without the tenant said in the drop: `Ok(Rows { deleted: 0 })`, its row
/// left.
#[tokio::test]
async fn a_row_level_tenant_dropped_by_a_role_the_policies_hold_takes_its_rows() {
    let (l, container, a, _b, app) = secured().await;
    owned_by_the_app(&l, &container, &app).await;
    let tenants = secured_handle(&l, &app).await;
    let dropped = tenants.drop(a.as_str()).await.unwrap();
    assert!(
        matches!(dropped, tenancy::Dropped::Rows { deleted: 1 }),
        "{dropped:?}"
    );
    assert_eq!(rows_of(&app, &container, &a).await, 0, "its rows left");
    assert!(l.tenants.tenant(a.as_str()).await.is_err());
}

/// Promoting and demoting a row-level tenant as a role the policies hold moves its rows; never
/// an empty schema with the rows left behind.
#[tokio::test]
async fn a_row_level_tenant_moved_by_a_role_the_policies_hold_takes_its_rows() {
    let (l, container, a, _b, app) = secured().await;
    owned_by_the_app(&l, &container, &app).await;
    // The database the test runs in (a private cluster's is not `test`).
    app.admin
        .execute(AssertSqlSafe(format!(
            "DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO {}', current_database()); END $$",
            app.name
        )))
        .await
        .unwrap();
    let tenants = Tenants::new(app.pool.clone(), migrator(with_tenant_column()))
        .unwrap()
        .with_registry(&l.registry)
        .unwrap()
        .with_row_security()
        .await
        .unwrap();
    let moved = tenants.promote(a.as_str()).await.unwrap();
    assert_eq!(moved.rows, 1);
    assert_eq!(
        rows_of(&app, &container, &a).await,
        0,
        "left in the container"
    );
    let back = tenants.demote(a.as_str(), &container).await.unwrap();
    assert_eq!(back.rows, 1);
    assert_eq!(rows_of(&app, &container, &a).await, 1);
}

/// Renaming a row-level tenant as a role the policies hold: the rename says the new name in
/// `tenancy.renamed_to`, which the policies' `WITH CHECK` accepts, so the rows get their new
/// key. Afterwards, on every connection of the role's pool (one of them ran the rename, so its
/// session knows the settings, which then read `''`), a tenant's transaction can write neither
/// a row of the new name nor a row with an empty tenant (the column's default here), and a
/// transaction that says no tenant cannot write the latter either.
#[tokio::test]
async fn a_row_level_tenant_renamed_by_a_role_the_policies_hold_takes_its_rows() {
    let (l, container, a, b, app) = secured().await;
    renamed_by_a_held_role(&l, &container, &a, &b, &app).await;
}

/// The rename above, of `a` ("Abu", one row) beside `b`, by `app`, made the tables' owner.
pub(crate) async fn renamed_by_a_held_role(
    l: &Lifecycle,
    container: &Tenant,
    a: &Tenant,
    b: &Tenant,
    app: &AppRole,
) {
    owned_by_the_app(l, container, app).await;
    let tenants = secured_handle(l, app).await;
    let new = Tenant::new(tenancy_testdb::unique_name("renamed")).unwrap();
    tenants.rename(a.as_str(), new.as_str()).await.unwrap();
    assert_eq!(rows_of(app, container, a).await, 0, "rows left behind");
    assert_eq!(rows_of(app, container, &new).await, 1, "its row");
    assert_eq!(
        l.tenants.tenant(new.as_str()).await.unwrap().container(),
        container.as_str()
    );
    assert!(!l.tenants.exists(a.as_str()).await.unwrap());

    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(app.pool.acquire().await.unwrap());
    }
    for conn in &mut held {
        let (named, empty) = (format!("'{new}'"), "DEFAULT".to_owned());
        for (said, tenant_column) in [(true, &named), (true, &empty), (false, &empty)] {
            let mut tx = conn.begin().await.unwrap();
            if said {
                sqlx::query("SELECT set_config('tenancy.tenant', $1, true)")
                    .bind(b.as_str())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            let insert = format!(
                "INSERT INTO {}.guards (name, position, tenant_id) VALUES ('Stray', 'Guard', {tenant_column})",
                container.quoted()
            );
            let written = tx.execute(AssertSqlSafe(insert)).await;
            assert!(
                written.is_err(),
                "{tenant_column} written ({said}): {written:?}"
            );
        }
    }
    drop(held);
    tenants.rename(new.as_str(), a.as_str()).await.unwrap();
    assert_eq!(rows_of(app, container, a).await, 1, "its row, back");
}

/// A container whose policies an older version made (`WITH CHECK` of the tenant setting only)
/// refuses the rename whole: its rows would be rewritten to a tenant the transaction does not
/// say. Nothing changes: the tenant keeps its name, its registration and its row, and the new
/// name is neither registered nor holding rows.
#[tokio::test]
async fn a_rename_under_policies_an_older_version_made_is_refused_whole() {
    let (l, container, a, _b, app) = secured().await;
    owned_by_the_app(&l, &container, &app).await;
    let t = format!("{}.guards", container.quoted());
    let check = "tenant_id = current_setting('tenancy.tenant', true)";
    app.admin
        .execute(AssertSqlSafe(format!(
            "DROP POLICY tenancy_tenant ON {t}; \
             CREATE POLICY tenancy_tenant ON {t} USING ({check}) WITH CHECK ({check})"
        )))
        .await
        .unwrap();
    let tenants = secured_handle(&l, &app).await;
    let new = Tenant::new(tenancy_testdb::unique_name("renamed")).unwrap();
    let renamed = tenants.rename(a.as_str(), new.as_str()).await;
    assert!(renamed.is_err(), "renamed under the policies: {renamed:?}");
    assert_eq!(rows_of(&app, &container, &a).await, 1, "its row is gone");
    assert_eq!(
        rows_of(&app, &container, &new).await,
        0,
        "rows under the new name"
    );
    assert_eq!(
        l.tenants.tenant(a.as_str()).await.unwrap().container(),
        container.as_str()
    );
    assert!(!l.tenants.exists(new.as_str()).await.unwrap());
}
