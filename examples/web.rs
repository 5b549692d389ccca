//! A small JSON API whose tenant comes from the request: the subdomain of `localhost`
//! (`tenant_1.localhost:3000`) or the `X-Tenant` header.
//!
//! - `GET /guards`: the tenant's guards;
//! - `POST /guards` with `{"name": "...", "position": "..."}`: adds one (422 if invalid);
//! - `PATCH /guards/{id}` with some of `name`, `position`: changes only those columns.
//!
//! Unknown tenant → 404, malformed name → 400, no tenant → 400, all as short JSON.
//!
//! Run it with `cargo run --example web` (port 3000, or `PORT`). Like the quickstart it runs on
//! SQLite in a temporary folder when `DATABASE_URL` is not set, and otherwise on the backend
//! the URL's scheme names (`postgres://`, `mysql://`, `sqlite:///folder`). It creates
//! `tenant_1` and `tenant_2` if they are missing.
//!
//! It logs with `tracing`: the library's span of every statement and lifecycle operation (with
//! the `tracing` feature) is printed when it closes, with its tenant, table and time taken, and
//! each handler logs what it did for which tenant.
//!
//! `cargo run --example web -- --self-test` starts the server on a free port, sends a few real
//! requests, prints what came back, drops both tenants and exits (non-zero if an answer was not
//! the expected one).

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::mysql::MySqlPoolOptions;
use tenancy::postgres::PoolSettings;
use tenancy::{Changeset, Lifecycle, TenantModel, Tenants};
use tenancy_axum::{CurrentTenant, Header, Resolve, Subdomain, TenantCache, TenantLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body of `POST /guards`.
#[derive(Deserialize)]
struct NewGuard {
    name: String,
    position: String,
}

/// The body of `PATCH /guards/{id}`: only the fields present change.
#[derive(Deserialize)]
struct GuardPatch {
    name: Option<String>,
    position: Option<String>,
}

/// The tenant migrations: what every tenant holds, written once per backend.
const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migrations/tenant");
const MYSQL_MIGRATIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/migrations/mysql/tenant"
);
const SQLITE_MIGRATIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/migrations/sqlite/tenant"
);

const TENANTS: [&str; 2] = ["tenant_1", "tenant_2"];

// ---------------------------------------------------------------------------
// The model and the handlers, written once and compiled per backend: the handlers run their
// statements on the `Tenants` handle, which routes each to the request's tenant (PostgreSQL,
// MySQL: the shared pool; SQLite: the tenant's own file).
// ---------------------------------------------------------------------------

macro_rules! api {
    ($module:ident, $db:ty $(, backend = $backend:tt)?) => {
        mod $module {
            use super::*;

            #[derive(TenantModel, Serialize, Debug)]
            #[tenancy(table = "guards" $(, backend = $backend)?)]
            pub struct Guard {
                #[tenancy(id, generated)]
                id: i64,
                #[tenancy(required, length(max = 100))]
                name: String,
                #[tenancy(required, length(max = 100))]
                position: String,
            }

            async fn list(
                State(tenants): State<Tenants<$db>>,
                CurrentTenant(tenant): CurrentTenant,
            ) -> Result<Json<Vec<Guard>>, ApiError> {
                let guards = Guard::query(&tenant)
                    .order_by(Guard::ID.asc())
                    .fetch_all(&tenants)
                    .await?;
                tracing::info!(%tenant, guards = guards.len(), "listed guards");
                Ok(Json(guards.into_iter().map(|g| g.into_inner()).collect()))
            }

            async fn create(
                State(tenants): State<Tenants<$db>>,
                CurrentTenant(tenant): CurrentTenant,
                Json(new): Json<NewGuard>,
            ) -> Result<(StatusCode, Json<Guard>), ApiError> {
                let guard = Guard {
                    id: 0,
                    name: new.name,
                    position: new.position,
                };
                let stored = guard.insert(&tenants, &tenant).await?;
                tracing::info!(%tenant, id = stored.id, "added a guard");
                Ok((StatusCode::CREATED, Json(stored.into_inner())))
            }

            async fn update(
                State(tenants): State<Tenants<$db>>,
                CurrentTenant(tenant): CurrentTenant,
                UrlPath(id): UrlPath<i64>,
                Json(patch): Json<GuardPatch>,
            ) -> Result<Json<Guard>, ApiError> {
                let mut guard = Guard::find(&tenants, &tenant, id)
                    .await?
                    .ok_or(ApiError::NotFound)?;
                let mut changes = Changeset::new();
                if let Some(name) = patch.name {
                    changes = changes.set(Guard::NAME, name);
                }
                if let Some(position) = patch.position {
                    changes = changes.set(Guard::POSITION, position);
                }
                guard.apply(&tenants, &tenant, changes).await?; // UPDATE only the columns sent
                Ok(Json(guard.into_inner()))
            }

            /// The API: the tenant is the subdomain of `localhost`, or else the `X-Tenant`
            /// header.
            pub fn app(tenants: Tenants<$db>) -> Router {
                let resolver = Subdomain::new("localhost").or(Header::new("x-tenant"));
                // Knows created and dropped tenants at once; asks the database at most every
                // 30 s per name.
                let cache = TenantCache::new(&tenants);
                Router::new()
                    .route("/guards", get(list).post(create))
                    .route("/guards/{id}", patch(update))
                    .layer(TenantLayer::new(cache, resolver))
                    .with_state(tenants)
            }
        }
    };
}

api!(on_postgres, sqlx::Postgres);
api!(on_mysql, sqlx::MySql, backend = "mysql");
api!(on_sqlite, sqlx::Sqlite, backend = "sqlite");

/// What a handler can fail with, as a JSON response in the style of the tenant refusals.
enum ApiError {
    NotFound,
    Tenancy(tenancy::Error),
}

impl From<tenancy::Error> for ApiError {
    fn from(err: tenancy::Error) -> Self {
        ApiError::Tenancy(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::NotFound | ApiError::Tenancy(tenancy::Error::NotFound { .. }) => (
                StatusCode::NOT_FOUND,
                serde_json::json!({ "error": "not_found", "message": "no such guard" }),
            ),
            ApiError::Tenancy(tenancy::Error::Validation(errors)) => {
                let fields: Vec<_> = errors
                    .errors()
                    .iter()
                    .map(|e| serde_json::json!({ "field": e.field, "message": e.message }))
                    .collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    serde_json::json!({ "error": "invalid", "fields": fields }),
                )
            }
            ApiError::Tenancy(err) => {
                eprintln!("request failed: {err}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "error": "internal", "message": "see the server log" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let self_test = std::env::args().skip(1).any(|arg| arg == "--self-test");
    // The library's spans (statements at DEBUG, lifecycle operations at INFO) as one line each
    // when they close: operation, tenant, table, SQL, time. This example's own events at INFO;
    // everything else (sqlx's query log included) at WARN.
    use tracing::Level;
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_span_events(FmtSpan::CLOSE)
                .with_target(false),
        )
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("tenancy_core", Level::DEBUG)
                .with_target("web", Level::INFO)
                .with_default(Level::WARN),
        )
        .init();

    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            // Nothing configured: SQLite in a fresh temporary folder, removed when the server
            // stops (or the self-test ends).
            let folder = std::env::temp_dir().join(format!("tenancy-web-{}", std::process::id()));
            println!(
                "DATABASE_URL is not set: SQLite, a file per tenant in {}",
                folder.display()
            );
            let url = format!("sqlite://{}", folder.display());
            let result = on_sqlite_url(&url, self_test).await;
            std::fs::remove_dir_all(&folder)?;
            return result;
        }
    };
    if url.starts_with("sqlite:") {
        return on_sqlite_url(&url, self_test).await;
    }
    if let Some(rest) = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
    {
        let pool = MySqlPoolOptions::new()
            .max_connections(5)
            .connect(&format!("mysql://{rest}"))
            .await?;
        let migrator = Migrator::new(Path::new(MYSQL_MIGRATIONS)).await?;
        let tenants = Tenants::new(pool, migrator)?;
        return serve(tenants.clone(), on_mysql::app(tenants), self_test).await;
    }
    // `?pgbouncer=true` on the URL: every statement of the handle and of the tenant pools it
    // gives the handlers is one PgBouncer in transaction mode can serve.
    let migrator = Migrator::new(Path::new(MIGRATIONS)).await?;
    let tenants = PoolSettings::new()
        .expected_tenants(TENANTS.len())
        .models(1)
        .max_connections(5)
        .connect_tenants(&url, migrator)
        .await?;
    serve(tenants.clone(), on_postgres::app(tenants), self_test).await
}

/// The API on SQLite, with the tenant files in the folder of `url`.
async fn on_sqlite_url(url: &str, self_test: bool) -> Result<(), Box<dyn std::error::Error>> {
    let registry = tenancy::sqlite::open(url).await?;
    let migrator = Migrator::new(Path::new(SQLITE_MIGRATIONS)).await?;
    let tenants = Tenants::new(registry, migrator)?;
    serve(tenants.clone(), on_sqlite::app(tenants), self_test).await
}

/// Creates the example tenants if missing, then serves `app` (or runs the self-test against it
/// and drops the tenants).
async fn serve(
    tenants: impl Lifecycle,
    app: Router,
    self_test: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    for name in TENANTS {
        if self_test && tenants.exists(name).await? {
            tenants.drop_tenant(name).await?; // the self-test starts from empty tenants
        }
        if !tenants.exists(name).await? {
            tenants.create(name).await?;
            println!("created tenant {name}");
        }
    }

    if self_test {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let result = run_self_test(addr).await;
        server.abort();
        for name in TENANTS {
            tenants.drop_tenant(name).await?;
        }
        return result;
    }

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => 3000,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    print_usage(port);
    axum::serve(listener, app).await?;
    Ok(())
}

fn print_usage(port: u16) {
    let json = "-H 'Content-Type: application/json'";
    println!(
        "listening on http://127.0.0.1:{port} (Ctrl-C to stop)\n\
         \n\
         # the tenant from the subdomain (curl sends *.localhost to 127.0.0.1 itself):\n\
         curl -s http://tenant_1.localhost:{port}/guards\n\
         curl -s -X POST {json} -d '{{\"name\":\"Abu\",\"position\":\"Guard\"}}' http://tenant_1.localhost:{port}/guards\n\
         curl -s -X PATCH {json} -d '{{\"position\":\"Captain\"}}' http://tenant_1.localhost:{port}/guards/1\n\
         # or from the X-Tenant header:\n\
         curl -s -H 'X-Tenant: tenant_2' http://127.0.0.1:{port}/guards\n\
         # refused:\n\
         curl -si http://tenant_9.localhost:{port}/guards          # 404 unknown_tenant\n\
         curl -si -H 'X-Tenant: Tenant_1' http://127.0.0.1:{port}/guards   # 400 malformed_tenant\n\
         curl -si http://127.0.0.1:{port}/guards                   # 400 missing_tenant"
    );
}

// ---------------------------------------------------------------------------
// --self-test
// ---------------------------------------------------------------------------

/// Sends real requests to the server at `addr` and checks each status.
async fn run_self_test(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let abu = r#"{"name":"Abu","position":"Guard"}"#;
    let t1_host = "tenant_1.localhost";
    let created = check(
        addr,
        "POST /guards",
        "localhost",
        Some("tenant_1"),
        abu,
        201,
    )
    .await?;
    let id = serde_json::from_str::<serde_json::Value>(&created)?["id"]
        .as_i64()
        .ok_or("no id in the created guard")?;

    check(addr, "GET /guards", t1_host, None, "", 200).await?;
    let captain = r#"{"position":"Captain"}"#;
    let patched = check(
        addr,
        &format!("PATCH /guards/{id}"),
        t1_host,
        None,
        captain,
        200,
    )
    .await?;
    expect(
        patched.contains("Captain"),
        "the patch changed the position",
    )?;
    let upper = check(addr, "GET /guards", "TENANT_1.LOCALHOST:80", None, "", 200).await?;
    expect(upper.contains("Abu"), "host names are case-insensitive")?;

    let seen_by_2 = check(addr, "GET /guards", "localhost", Some("tenant_2"), "", 200).await?;
    expect(seen_by_2 == "[]", "tenant_2 sees none of tenant_1's guards")?;

    let empty = r#"{"name":"","position":"Guard"}"#;
    check(addr, "POST /guards", t1_host, None, empty, 422).await?;
    check(addr, "PATCH /guards/999999", t1_host, None, captain, 404).await?;
    check(addr, "GET /guards", "tenant_9.localhost", None, "", 404).await?;
    check(addr, "GET /guards", "localhost", Some("Tenant_1"), "", 400).await?;
    check(addr, "GET /guards", "a.b.localhost", None, "", 400).await?;
    check(addr, "GET /guards", "localhost", None, "", 400).await?;
    println!("self-test passed");
    Ok(())
}

fn expect(ok: bool, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("self-test failed: expected {what}").into())
    }
}

/// Sends one request (`request` is "METHOD /path") and checks the status; returns the body.
async fn check(
    addr: SocketAddr,
    request: &str,
    host: &str,
    x_tenant: Option<&str>,
    body: &str,
    status: u16,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut head = format!("{request} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(tenant) = x_tenant {
        head.push_str(&format!("X-Tenant: {tenant}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));

    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let (response_head, response_body) = raw.split_once("\r\n\r\n").ok_or("a cut-off response")?;
    let got: u16 = response_head
        .split(' ')
        .nth(1)
        .ok_or("no status line")?
        .parse()?;

    let via = x_tenant.map_or(String::new(), |t| format!(" X-Tenant: {t}"));
    println!("{request} (Host: {host}{via}) -> {got} {response_body}");
    if got != status {
        return Err(format!("self-test failed: expected {status}, got {got}").into());
    }
    Ok(response_body.to_owned())
}
