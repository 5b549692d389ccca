//! Production hardening: a tenant whose schema is gone is never migrated elsewhere, live
//! column-type changes do not break pooled connections, TLS (on PostgreSQL and on MySQL /
//! MariaDB), lock timeouts, error rendering.

use std::time::Duration;

use sqlx::migrate::MigrationType;
use sqlx::Connection;
use tenancy::{Changeset, Dropped, Error, MigrateOptions, Outcome, Tenant, TenantModel};

use crate::assert_err;
use crate::lifecycle_support::{has_table, migration, tenant_at_v1, v1};
use crate::support::{database_url, pool, pool_with, Guard};

async fn drop_schema_by_hand(pool: &sqlx::PgPool, tenant: &Tenant) {
    let sql = format!("DROP SCHEMA {} CASCADE", tenant.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tenant_whose_schema_is_gone_is_never_migrated_or_rolled_back_elsewhere() {
    let pool = pool().await;
    // A table in `public` with the name the tenant's migrations use: the data at risk.
    let shared = tenancy_testdb::unique_name("shared");
    let ddl =
        format!("CREATE TABLE public.{shared} (x int); INSERT INTO public.{shared} VALUES (7)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    let mut all = v1();
    all.push(migration(
        2,
        MigrationType::ReversibleUp,
        &format!("CREATE TABLE {shared}_v2 (x int)"),
    ));
    all.push(migration(
        2,
        MigrationType::ReversibleDown,
        &format!("DROP TABLE {shared}"),
    ));
    let (l, t) = tenant_at_v1(&pool).await;
    // Public on the path, as an application with shared types would have it: only the check
    // keeps unqualified names out of `public`.
    let newer = l
        .with_migrations(&pool, all)
        .with_shared_schemas(["public"]);
    drop_schema_by_hand(&pool, &t).await;

    assert_err!(newer.migrate(t.as_str()).await, Error::ContainerMissing { tenant, .. } if tenant == t);
    let report = newer.migrate_all(MigrateOptions::default()).await.unwrap();
    let failed: Vec<_> = report.failed().collect();
    assert!(
        matches!(failed[..], [(name, Error::ContainerMissing { .. })] if *name == t),
        "{failed:?}"
    );
    assert!(!has_table(&pool, "public", &format!("{shared}_v2")).await);
    // Pretend v2 had been applied, then roll it back: its down migration would drop the public
    // table of the same name.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{}\".migrations (tenant, version, description, checksum, execution_ms) \
         SELECT $1, 2, 'v2', checksum, 0 FROM \"{}\".migrations WHERE tenant = $1",
        l.registry, l.registry
    )))
    .bind(t.as_str())
    .execute(&pool)
    .await
    .unwrap();
    assert_err!(
        newer.rollback(t.as_str(), 1).await,
        Error::ContainerMissing { .. }
    );
    let kept: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT x FROM public.{shared}"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, 7);
    assert_err!(
        newer.rename(t.as_str(), "x_renamed").await,
        Error::ContainerMissing { .. }
    );

    // Drop unregisters it and says the schema was already gone.
    assert_eq!(newer.drop(t.as_str()).await.unwrap(), Dropped::Unregistered);
    assert!(!newer.exists(t.as_str()).await.unwrap());
    assert_err!(newer.drop(t.as_str()).await, Error::NotATenant { .. });
    let cleanup = format!("DROP TABLE public.{shared}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(cleanup))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn without_shared_schemas_migrations_see_only_the_tenant() {
    let pool = pool().await;
    let (l, t) = tenant_at_v1(&pool).await;
    let path: String = {
        let probe = l.with_migrations(&pool, {
            let mut m = v1();
            m.push(migration(
                2,
                MigrationType::Simple,
                "CREATE TABLE b (x int)",
            ));
            m.push(migration(
                3,
                MigrationType::Simple,
                "CREATE TABLE seen AS SELECT current_setting('search_path') AS path",
            ));
            m
        });
        assert_eq!(
            probe.migrate(t.as_str()).await.unwrap(),
            Outcome::Migrated(vec![2, 3])
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT path FROM {}.seen",
            t.quoted()
        )))
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(path, t.quoted());
}

/// Guards of one tenant, read and written on one connection through every generated statement
/// kind.
async fn read_everything(conn: &mut sqlx::PgConnection, t: &Tenant, id: i64) -> Result<(), Error> {
    Guard::find(&mut *conn, t, id)
        .await?
        .expect("the guard is there");
    Guard::query(t)
        .filter(Guard::NAME.eq("Abu"))
        .fetch_all(&mut *conn)
        .await?;
    Guard::query(t).count(&mut *conn).await?;
    let mut g = Guard::find(&mut *conn, t, id).await?.unwrap();
    g.apply(
        &mut *conn,
        t,
        Changeset::new().set(Guard::POSITION, "Captain"),
    )
    .await?;
    g.update(&mut *conn, t).await?;
    let mut tmp = Guard::new("Tmp", "x").insert(&mut *conn, t).await?;
    tmp.delete(&mut *conn, t).await?;
    Ok(())
}

/// [`read_everything`] on each of the pool's `connections` connections (all held at once, so
/// each is a different one).
async fn read_on_every_connection(
    pool: &sqlx::PgPool,
    connections: u32,
    t: &Tenant,
    id: i64,
) -> Result<(), Error> {
    let mut held = Vec::new();
    for _ in 0..connections {
        held.push(pool.acquire().await?);
    }
    for conn in &mut held {
        read_everything(conn, t, id).await?;
    }
    Ok(())
}

async fn a_column_type_change_keeps_every_connection_working(connections: u32) {
    let pool = pool_with(connections).await;
    let steps = [
        "ALTER TABLE guards ALTER COLUMN position TYPE varchar(200)",
        "ALTER TABLE guards ADD COLUMN badge text",
        "ALTER TABLE guards ALTER COLUMN age TYPE bigint USING age::bigint",
        "ALTER TABLE guards DROP COLUMN badge",
        "ALTER TABLE guards ALTER COLUMN age TYPE integer USING age::integer",
    ];
    let mut all = v1();
    let (l, t) = tenant_at_v1(&pool).await;
    let id = Guard::new("Abu", "Guard")
        .insert(&pool, &t)
        .await
        .unwrap()
        .id;
    // Every connection of the pool prepares and caches every statement before the first
    // change.
    read_on_every_connection(&pool, connections, &t, id)
        .await
        .unwrap();
    for (i, sql) in steps.iter().enumerate() {
        all.push(migration(i as i64 + 2, MigrationType::Simple, sql));
        let newer = l.with_migrations(&pool, all.clone());
        // Traffic from every connection while the migration runs, and after it.
        let traffic: Vec<_> = (0..connections * 2)
            .map(|_| {
                let (pool, t) = (pool.clone(), t.clone());
                tokio::spawn(async move {
                    for _ in 0..5 {
                        let mut conn = pool.acquire().await?;
                        read_everything(&mut conn, &t, id).await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        assert_eq!(
            newer.migrate(t.as_str()).await.unwrap(),
            Outcome::Migrated(vec![i as i64 + 2])
        );
        for task in traffic {
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("after {sql:?}: {e:?}"));
        }
        // Afterwards, every connection again.
        read_on_every_connection(&pool, connections, &t, id)
            .await
            .unwrap_or_else(|e| panic!("after {sql:?}: {e:?}"));
    }
}

#[tokio::test]
async fn a_column_type_change_keeps_a_one_connection_pool_working() {
    a_column_type_change_keeps_every_connection_working(1).await;
}

#[tokio::test]
async fn a_column_type_change_keeps_a_four_connection_pool_working() {
    a_column_type_change_keeps_every_connection_working(4).await;
}

#[tokio::test]
async fn in_a_transaction_a_stale_statement_fails_once_and_the_retry_works() {
    let pool = pool_with(1).await;
    let (l, t) = tenant_at_v1(&pool).await;
    let id = Guard::new("Abu", "Guard")
        .insert(&pool, &t)
        .await
        .unwrap()
        .id;
    Guard::find(&pool, &t, id).await.unwrap();
    let mut all = v1();
    all.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE guards ALTER COLUMN position TYPE varchar(200)",
    ));
    l.with_migrations(&pool, all)
        .migrate(t.as_str())
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let err = Guard::find(&mut *tx, &t, id).await.unwrap_err();
    assert!(err.as_sqlx().is_some(), "{err:?}");
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(Guard::find(&mut *tx, &t, id).await.unwrap().is_some());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn tls_connections_run_crud_and_migrations() {
    let url = tenancy_testdb::tls_database_url().unwrap_or_else(|e| panic!("{e}"));
    assert!(url.ends_with("sslmode=require"), "{url}");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect with {url}: {e}"));
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "the connection is not encrypted");
    let mut all = v1();
    let (l, t) = tenant_at_v1(&pool).await;
    let g = Guard::new("Abu", "Guard").insert(&pool, &t).await.unwrap();
    assert_eq!(
        Guard::find(&pool, &t, g.id).await.unwrap().unwrap().name,
        "Abu"
    );
    all.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE guards ADD COLUMN badge text",
    ));
    assert_eq!(
        l.with_migrations(&pool, all)
            .migrate(t.as_str())
            .await
            .unwrap(),
        Outcome::Migrated(vec![2])
    );
}

#[tokio::test]
async fn status_of_one_tenant() {
    let pool = pool().await;
    let (l, t) = tenant_at_v1(&pool).await;
    let mut all = v1();
    all.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE guards ADD COLUMN badge text",
    ));
    let status = l
        .with_migrations(&pool, all)
        .status_of(t.as_str())
        .await
        .unwrap();
    assert_eq!(
        (status.tenant, status.applied, status.pending),
        (t, vec![1], vec![2])
    );
    assert!(status.changed.is_empty());
    assert_err!(
        l.tenants.status_of("nobody_here_x").await,
        Error::NotATenant { .. }
    );
}

#[tokio::test]
async fn a_lock_timeout_names_the_session_holding_the_tenant() {
    let pool = pool().await;
    let (l, t) = tenant_at_v1(&pool).await;
    // A long transaction reading the tenant's table holds a lock DROP SCHEMA needs.
    let mut reader = sqlx::PgConnection::connect(&database_url()).await.unwrap();
    let reader_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    let mut tx = reader.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {}.guards",
        t.quoted()
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let impatient = l
        .tenants
        .clone()
        .with_lock_timeout(Duration::from_millis(300));
    match impatient.drop(t.as_str()).await {
        Err(Error::LockTimeout {
            tenant,
            waited,
            holders,
        }) => {
            assert_eq!((tenant, waited), (t.clone(), Duration::from_millis(300)));
            assert!(holders.iter().any(|h| h.pid == reader_pid), "{holders:?}");
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    tx.rollback().await.unwrap();
    assert!(
        l.tenants.exists(t.as_str()).await.unwrap(),
        "nothing was dropped"
    );
    assert_eq!(impatient.drop(t.as_str()).await.unwrap(), Dropped::Schema);
}

/// `create_in` waits for the name's lock at most the handle's lock timeout (set by the registry's
/// function, in its own call), and then names who holds it; nothing is registered.
#[tokio::test]
async fn a_create_in_waits_for_the_name_at_most_the_lock_timeout() {
    let pool = pool().await;
    let (l, container) = tenant_at_v1(&pool).await;
    let name = tenancy_testdb::unique_name("held");
    // Another session holds the name's lifecycle lock (as a create of it would).
    let mut holder = sqlx::PgConnection::connect(&database_url()).await.unwrap();
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .unwrap();
    let mut tx = holder.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("tenancy:{}:{name}", l.registry))
        .execute(&mut *tx)
        .await
        .unwrap();
    let impatient = l
        .tenants
        .clone()
        .with_lock_timeout(Duration::from_millis(300));
    let placing = impatient.create_in(&name, &container);
    match tokio::time::timeout(Duration::from_secs(20), placing).await {
        Ok(Err(Error::LockTimeout {
            tenant,
            waited,
            holders,
        })) => {
            assert_eq!(
                (tenant.as_str(), waited),
                (name.as_str(), Duration::from_millis(300))
            );
            assert!(holders.iter().any(|h| h.pid == holder_pid), "{holders:?}");
        }
        Ok(other) => panic!("expected a lock timeout, got {other:?}"),
        Err(_) => panic!("create_in waited 20 s for a lock held elsewhere"),
    }
    tx.rollback().await.unwrap();
    assert_err!(l.tenants.tenant(&name).await, Error::NotATenant { .. });
    let placed = impatient.create_in(&name, &container).await.unwrap();
    assert_eq!(placed.container(), container.as_str());
    l.tenants.drop(&name).await.unwrap();
}

#[tokio::test]
async fn errors_say_each_thing_once_and_name_the_tenant() {
    let pool = pool().await;
    let mut all = v1();
    all.push(migration(
        2,
        MigrationType::Simple,
        "ALTER TABLE guards ADD COLUMN",
    ));
    let (l, t) = tenant_at_v1(&pool).await;
    let err = l
        .with_migrations(&pool, all)
        .migrate(t.as_str())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(
        message,
        format!("migration 2 (v2) failed in tenant \"{t}\"")
    );
    let cause = std::error::Error::source(&err).expect("the database error is the source");
    let cause = cause.to_string();
    assert!(cause.contains("syntax error"), "{cause}");
    assert!(cause.contains("(SQLSTATE 42601)"), "{cause}");
    assert!(!cause.contains(" at line "), "{cause}");
    assert!(std::error::Error::source(&err).unwrap().source().is_none());

    assert_err!(l.tenants.rename(t.as_str(), t.as_str()).await, Error::SameName { tenant, .. } if tenant == t);

    // A database error of a lifecycle operation names its tenant.
    let closed = pool_with(1).await;
    let on_closed = l.with_migrations(&closed, v1());
    closed.close().await;
    let err = on_closed.migrate(t.as_str()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Database { tenant: Some(x), .. } if *x == t),
        "{err:?}"
    );
    assert_eq!(err.to_string(), format!("database error in tenant \"{t}\""));
}

/// `verify-ca` verifies: with a CA that signed no certificate of the server, the connection is
/// refused; the same server with `require` (encrypted, not verified) connects.
#[tokio::test]
async fn tls_verify_ca_with_a_wrong_ca_is_refused() {
    let url = tenancy_testdb::tls_database_url().unwrap_or_else(|e| panic!("{e}"));
    let require: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let conn = sqlx::PgConnection::connect_with(&require)
        .await
        .unwrap_or_else(|e| panic!("connect with {url}: {e}"));
    conn.close().await.unwrap();
    let wrong = require
        .ssl_mode(sqlx::postgres::PgSslMode::VerifyCa)
        .ssl_root_cert(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/wrong-ca.pem"
        ));
    match sqlx::PgConnection::connect_with(&wrong).await {
        Ok(_) => panic!("verify-ca accepted a server certificate the CA did not sign"),
        // rustls's refusal, as the handshake's I/O error.
        Err(e) => assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// TLS on MySQL / MariaDB: `tenancy_testdb::tls_mysql_url()`, the private server with a CA of its
// own (the machine's MariaDB may have TLS off), `ssl-mode=required` and that CA as `ssl-ca`.

/// The cipher of `conn`'s session, empty when it is not encrypted.
async fn mysql_cipher(conn: impl sqlx::Executor<'_, Database = sqlx::MySql>) -> String {
    let (_, cipher): (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .fetch_one(conn)
        .await
        .unwrap();
    cipher
}

/// The TLS URL's options, with `mode`.
fn mysql_tls_options(mode: sqlx::mysql::MySqlSslMode) -> sqlx::mysql::MySqlConnectOptions {
    let url = tenancy_testdb::tls_mysql_url().unwrap_or_else(|e| panic!("{e}"));
    let options: sqlx::mysql::MySqlConnectOptions = url.parse().unwrap();
    options.ssl_mode(mode)
}

#[tokio::test]
async fn tls_mysql_connections_run_crud_and_migrations() {
    use crate::backends::mysql::{v1, v2, Guard, Lifecycle};
    let url = tenancy_testdb::tls_mysql_url().unwrap_or_else(|e| panic!("{e}"));
    assert!(url.contains("ssl-mode=required"), "{url}");
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect with {url}: {e}"));
    // Both connections of the pool, held at once.
    let (mut a, mut b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    for conn in [&mut a, &mut b] {
        assert!(
            !mysql_cipher(&mut **conn).await.is_empty(),
            "the connection is not encrypted"
        );
    }
    drop((a, b));
    let l = Lifecycle::new(&pool, v1()).await;
    let t = l
        .tenants
        .create(tenancy_testdb::unique_name("tls"))
        .await
        .unwrap();
    let g = Guard::new("Abu", "Guard").insert(&pool, &t).await.unwrap();
    assert_eq!(
        Guard::find(&pool, &t, g.id).await.unwrap().unwrap().name,
        "Abu"
    );
    assert_eq!(
        l.with_migrations(&pool, v2())
            .migrate(t.as_str())
            .await
            .unwrap(),
        Outcome::Migrated(vec![2])
    );
}

/// `VERIFY_CA` verifies: with a CA that signed no certificate of the server, the connection is
/// refused; the same server with `REQUIRED` (encrypted, not verified) connects.
#[tokio::test]
async fn tls_mysql_verify_ca_with_a_wrong_ca_is_refused() {
    use sqlx::mysql::{MySqlConnection, MySqlSslMode};
    let required = mysql_tls_options(MySqlSslMode::Required);
    let conn = MySqlConnection::connect_with(&required)
        .await
        .unwrap_or_else(|e| panic!("connect with {required:?}: {e}"));
    conn.close().await.unwrap();
    let wrong = mysql_tls_options(MySqlSslMode::VerifyCa).ssl_ca(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wrong-ca.pem"
    ));
    match MySqlConnection::connect_with(&wrong).await {
        Ok(_) => panic!("VERIFY_CA accepted a server certificate the CA did not sign"),
        // rustls's refusal, as the handshake's I/O error.
        Err(e) => assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}"),
    }
}

/// `VERIFY_CA` with the CA that signed the server's certificate (the URL's `ssl-ca`) connects,
/// encrypted.
#[tokio::test]
async fn tls_mysql_verify_ca_with_the_servers_ca_connects() {
    use sqlx::mysql::{MySqlConnection, MySqlSslMode};
    let url = tenancy_testdb::tls_mysql_url().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        url.contains("ssl-ca="),
        "{url} names no CA (ssl-ca=): MYSQL_TLS_URL should name its server's"
    );
    let verify = mysql_tls_options(MySqlSslMode::VerifyCa);
    let mut conn = MySqlConnection::connect_with(&verify)
        .await
        .unwrap_or_else(|e| panic!("VERIFY_CA with the server's CA, {url}: {e}"));
    assert!(
        !mysql_cipher(&mut conn).await.is_empty(),
        "the connection is not encrypted"
    );
    conn.close().await.unwrap();
}
