//! Soak: a small axum app on tenancy serving mixed reads and writes for many tenants from
//! concurrent HTTP/1 clients, while tenants are created, migrated, renamed and dropped in the
//! background; the same handlers on plain axum + sqlx (hand-written schema-qualified SQL, no
//! tenancy) serve the same tenants in alternating slices of the same run, for the ratios.
//!
//! Every row carries its tenant's identity (`name`), so every response is checked: a row of
//! another tenant is a cross-tenant leak, and a success whose body does not parse is an
//! unexpected error. For a tenant being dropped or renamed at that moment (the background's
//! "churn" tenants) one answer is expected and counted apart: a 404 `unknown_tenant` naming
//! it. Any other error is unexpected. The program exits non-zero on a leak or an unexpected
//! error.
//!
//! ```sh
//! # ~45 s: 100 tenants, 8 clients, a new migration every 10 s
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench soak -- --quick
//! # the long mode: 1,000 tenants, 8 clients, a new migration every minute
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench soak -- --minutes 10
//! ```
//!
//! Options: `--quick`, `--minutes M` (long mode, default 10), `--tenants N`, `--clients N`,
//! `--pool N` (connections per side, default 8). Everything listens on 127.0.0.1 only; the
//! tenants and the registry it made are dropped at the end. PostgreSQL only (`DATABASE_URL`,
//! or a private cluster from `tenancy-testdb` when unset).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgPool;
use sqlx::SqlSafeStr;
use tenancy::postgres::PoolSettings;
use tenancy::{MigrateOptions, TenantModel, Tenants};
use tenancy_axum::{CurrentTenant, Header, TenantCache, TenantLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Settings

struct Settings {
    quick: bool,
    duration: Duration,
    tenants: usize,
    clients: usize,
    pool: u32,
    /// A new migration for every tenant this often.
    migrate_every: Duration,
    /// One create, rename or drop this often.
    churn_every: Duration,
    /// Tenancy and the baseline alternate in slices of this length.
    slice: Duration,
    /// At most this many requests per side.
    max_requests: usize,
}

fn settings() -> Settings {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<f64>()
                    .unwrap_or_else(|_| panic!("{flag} takes a number"))
            })
    };
    let quick = args.iter().any(|a| a == "--quick");
    let minutes = value("--minutes").unwrap_or(10.0);
    let mut s = if quick {
        Settings {
            quick,
            duration: Duration::from_secs(36),
            tenants: 100,
            clients: 8,
            pool: 8,
            migrate_every: Duration::from_secs(10),
            churn_every: Duration::from_millis(200),
            slice: Duration::from_secs(3),
            max_requests: 2_000_000,
        }
    } else {
        Settings {
            quick,
            duration: Duration::from_secs_f64(minutes * 60.0),
            tenants: 1_000,
            clients: 8,
            pool: 8,
            migrate_every: Duration::from_secs(60),
            churn_every: Duration::from_millis(500),
            slice: Duration::from_secs(10),
            max_requests: 20_000_000,
        }
    };
    if let Some(n) = value("--tenants") {
        s.tenants = n as usize;
    }
    if let Some(n) = value("--clients") {
        s.clients = n as usize;
    }
    if let Some(n) = value("--pool") {
        s.pool = n as u32;
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The two apps: the same two handlers (the newest 20 rows; insert one), with tenancy and without.

/// A row: `name` is its tenant's identity (the name it was created with; renames keep it).
#[derive(TenantModel, Serialize, Deserialize, Debug, sqlx::FromRow)]
#[tenancy(table = "guards")]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    #[tenancy(required)]
    name: String,
    #[tenancy(required)]
    position: String,
}

#[derive(Deserialize)]
struct NewGuard {
    name: String,
    position: String,
}

/// An error response, `{"error": code, "message": text}` as `TenantLayer`'s own refusals:
/// 404 `unknown_tenant` for a tenant that does not exist (any more), 500 `internal` otherwise.
struct Failed(StatusCode, &'static str, String);

/// The code of a 404 for a tenant that does not exist (`TenantRejection::Unknown`'s, and the
/// handlers' when the tenant's table is gone).
const UNKNOWN_TENANT: &str = "unknown_tenant";

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1, "message": self.2 });
        (self.0, Json(body)).into_response()
    }
}

impl From<tenancy::Error> for Failed {
    fn from(e: tenancy::Error) -> Self {
        match e {
            tenancy::Error::UnknownTenant { .. } => {
                Failed(StatusCode::NOT_FOUND, UNKNOWN_TENANT, e.to_string())
            }
            other => Failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

/// The start of a response body, for a message.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(160).collect()
}

/// An error response's body.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

/// Whether a response is the documented answer for tenant `name` gone (dropped, or renamed
/// away): a 404 with code `unknown_tenant` whose message names the tenant.
fn is_unknown_tenant(status: u16, body: &[u8], name: &str) -> bool {
    status == 404
        && serde_json::from_slice::<ErrorBody>(body)
            .is_ok_and(|b| b.error == UNKNOWN_TENANT && b.message.contains(name))
}

async fn tenancy_list(
    State(pool): State<PgPool>,
    CurrentTenant(tenant): CurrentTenant,
) -> Result<Json<Vec<Guard>>, Failed> {
    let rows = Guard::query(&tenant)
        .order_by(Guard::ID.desc())
        .limit(20)
        .fetch_all(&pool)
        .await?;
    Ok(Json(rows.into_iter().map(|r| r.into_inner()).collect()))
}

async fn tenancy_insert(
    State(pool): State<PgPool>,
    CurrentTenant(tenant): CurrentTenant,
    Json(new): Json<NewGuard>,
) -> Result<(StatusCode, Json<Guard>), Failed> {
    let guard = Guard {
        id: 0,
        name: new.name,
        position: new.position,
    };
    let stored = guard.insert(&pool, &tenant).await?;
    Ok((StatusCode::CREATED, Json(stored.into_inner())))
}

fn tenancy_app(pool: PgPool, tenants: &Tenants) -> Router {
    Router::new()
        .route("/guards", get(tenancy_list).post(tenancy_insert))
        .layer(TenantLayer::new(
            TenantCache::new(tenants),
            Header::new("x-tenant"),
        ))
        .with_state(pool)
}

/// The baseline's own tenant check: the same naming rule, by hand; the name is then quoted.
fn plain_tenant(headers: &HeaderMap) -> Result<String, Failed> {
    let name = headers
        .get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(Failed(
            StatusCode::BAD_REQUEST,
            "malformed_tenant",
            "bad tenant".into(),
        ))
    }
}

/// The baseline's answer to a database error of tenant `tenant`'s statement: a missing table
/// or schema, or a deadlock with the drop or rename of the tenant's schema (the background's
/// churn; CI's quick soak once saw "deadlock detected" on a withdrawn tenant, on this side
/// only), is a 404 `unknown_tenant` naming the tenant (expected only for a withdrawn churn
/// tenant, as on the library's side); anything else a 500.
fn plain_error(tenant: &str) -> impl FnOnce(sqlx::Error) -> Failed + '_ {
    move |e| {
        let code = match &e {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        match code.as_deref() {
            Some("42P01" | "3F000" | "40P01") => Failed(
                StatusCode::NOT_FOUND,
                UNKNOWN_TENANT,
                format!("tenant {tenant}: {e}"),
            ),
            _ => Failed(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
}

async fn plain_list(
    State(pool): State<PgPool>,
    headers: HeaderMap,
) -> Result<Json<Vec<Guard>>, Failed> {
    let t = plain_tenant(&headers)?;
    let sql = format!(
        "SELECT \"id\", \"name\", \"position\" FROM \"{t}\".\"guards\" ORDER BY \"id\" DESC LIMIT $1"
    );
    let rows: Vec<Guard> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(20i64)
        .fetch_all(&pool)
        .await
        .map_err(plain_error(&t))?;
    Ok(Json(rows))
}

async fn plain_insert(
    State(pool): State<PgPool>,
    headers: HeaderMap,
    Json(new): Json<NewGuard>,
) -> Result<(StatusCode, Json<Guard>), Failed> {
    let t = plain_tenant(&headers)?;
    let sql = format!(
        "INSERT INTO \"{t}\".\"guards\" (\"name\", \"position\") VALUES ($1, $2) RETURNING \"id\", \"name\", \"position\""
    );
    let row: Guard = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(new.name)
        .bind(new.position)
        .fetch_one(&pool)
        .await
        .map_err(plain_error(&t))?;
    Ok((StatusCode::CREATED, Json(row)))
}

fn plain_app(pool: PgPool) -> Router {
    Router::new()
        .route("/guards", get(plain_list).post(plain_insert))
        .with_state(pool)
}

// ---------------------------------------------------------------------------------------------
// Tenants: stable ones (never touched by the background) and churn ones (created, renamed,
// dropped). `live` maps each churn tenant's current name to its identity.

fn migration(version: i64, sql: &str) -> Migration {
    Migration::new(
        version,
        format!("v{version}").into(),
        MigrationType::Simple,
        sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str(),
        false,
    )
}

/// Migrations 1..=`latest`: the table, then one added column per version.
fn migrator(latest: i64) -> Migrator {
    let mut all = vec![migration(
        1,
        "CREATE TABLE guards (id bigserial PRIMARY KEY, name text NOT NULL, position text NOT NULL)",
    )];
    for v in 2..=latest {
        all.push(migration(
            v,
            &format!("ALTER TABLE guards ADD COLUMN c{v} int"),
        ));
    }
    Migrator::with_migrations(all)
}

#[derive(Default)]
struct Churn {
    /// Current name → identity.
    live: HashMap<String, String>,
    /// Names being renamed or dropped right now, and names that were (requests to them fail,
    /// as expected).
    gone: std::collections::HashSet<String>,
    created: usize,
    renamed: usize,
    dropped: usize,
    migrations: usize,
    migrated_tenants: usize,
    churn_errors: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The client: HTTP/1.1 keep-alive over a plain TcpStream.

struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends one request; the status and body. Reconnects once on a closed connection.
    async fn send(
        &mut self,
        method: &str,
        tenant: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut request =
            format!("{method} /guards HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tenant: {tenant}\r\n");
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        for attempt in 0..2 {
            if self.stream.is_none() {
                let s = TcpStream::connect(self.addr).await?;
                s.set_nodelay(true)?;
                self.stream = Some(s);
                self.buf.clear();
            }
            match self.round_trip(request.as_bytes()).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 => {
                    let _ = e;
                    self.stream = None;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!()
    }

    async fn round_trip(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let stream = self.stream.as_mut().unwrap();
        stream.write_all(request).await?;
        let closed = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_string();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(closed)?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| std::io::Error::other("no content-length"))?;
        while self.buf.len() < head_end + length {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok((status, body))
    }
}

/// What one side saw.
#[derive(Default)]
struct Tally {
    requests: usize,
    ok: usize,
    reads: usize,
    writes: usize,
    rows_checked: usize,
    cross_tenant: usize,
    expected_errors: HashMap<String, usize>,
    unexpected_errors: HashMap<String, usize>,
    latencies_us: Vec<u32>,
    busy: Duration,
    examples: Vec<String>,
}

// ---------------------------------------------------------------------------------------------

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let s = settings();
    let url = tenancy_testdb::database_url().unwrap_or_else(|e| panic!("{e}"));
    let run = format!("soak{}", std::process::id());
    let registry = format!("{run}_reg");
    println!(
        "soak: {} tenants, {} clients, pool {} per side, {:?}, migration every {:?}, churn every {:?}, slices of {:?}{}",
        s.tenants,
        s.clients,
        s.pool,
        s.duration,
        s.migrate_every,
        s.churn_every,
        s.slice,
        if s.quick { " (--quick)" } else { "" }
    );

    let settings = PoolSettings::new()
        .expected_tenants(s.tenants)
        .models(1)
        .max_connections(s.pool);
    let lib_pool = settings.connect(&url).await.expect("connect");
    let plain_pool = settings.connect(&url).await.expect("connect");
    let admin_pool = settings.connect(&url).await.expect("connect");
    let version = Arc::new(AtomicU64::new(1));
    let handle = |v: i64| {
        Tenants::new(admin_pool.clone(), migrator(v))
            .unwrap()
            .with_registry(&registry)
            .unwrap()
    };
    // The app's handle: CRUD and the cache; the background renames and drops through it, so
    // the cache hears of them at once.
    let app_tenants = Tenants::new(lib_pool.clone(), migrator(1))
        .unwrap()
        .with_registry(&registry)
        .unwrap();

    // Setup: the tenants, `stable` of them never touched by the background.
    let t0 = Instant::now();
    let stable_n = s.tenants * 9 / 10;
    let names: Vec<String> = (0..s.tenants).map(|i| format!("{run}_{i:04}")).collect();
    {
        let next = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (next, names, h) = (next.clone(), names.clone(), handle(1));
            set.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(name) = names.get(i) else { break };
                    h.create(name).await.expect("create");
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    }
    println!(
        "setup: {} tenants created in {:.1?}",
        s.tenants,
        t0.elapsed()
    );
    let stable: Arc<Vec<String>> = Arc::new(names[..stable_n].to_vec());
    let churn = Arc::new(Mutex::new(Churn::default()));
    {
        let mut c = churn.lock().unwrap();
        for name in &names[stable_n..] {
            c.live.insert(name.clone(), name.clone());
        }
    }
    let live_list: Arc<RwLock<Vec<(String, String)>>> = Arc::new(RwLock::new(
        names[stable_n..]
            .iter()
            .map(|n| (n.clone(), n.clone()))
            .collect(),
    ));

    // The two servers.
    let serve = |app: Router| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    };
    let lib_addr = serve(tenancy_app(lib_pool.clone(), &app_tenants)).await;
    let plain_addr = serve(plain_app(plain_pool.clone())).await;

    let stop = Arc::new(AtomicBool::new(false));
    // Background: churn and migrations.
    let background = {
        let (stop, churn, live_list, app_tenants, run) = (
            stop.clone(),
            churn.clone(),
            live_list.clone(),
            app_tenants.clone(),
            run.clone(),
        );
        let (version, admin, registry) = (version.clone(), admin_pool.clone(), registry.clone());
        let (churn_every, migrate_every) = (s.churn_every, s.migrate_every);
        tokio::spawn(async move {
            let mut k = 0usize;
            let mut last_migration = Instant::now();
            let publish = |c: &Churn| {
                let mut l = live_list.write().unwrap();
                *l = c.live.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
                l.sort();
            };
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(churn_every).await;
                k += 1;
                if last_migration.elapsed() >= migrate_every {
                    last_migration = Instant::now();
                    let v = version.fetch_add(1, Ordering::SeqCst) as i64 + 1;
                    let h = Tenants::new(admin.clone(), migrator(v))
                        .unwrap()
                        .with_registry(&registry)
                        .unwrap();
                    let t = Instant::now();
                    let result = h
                        .migrate_all(MigrateOptions::default().concurrency(2))
                        .await;
                    let mut c = churn.lock().unwrap();
                    c.migrations += 1;
                    match result {
                        Ok(report) => {
                            c.migrated_tenants += report.changed().count();
                            for (t, e) in report.failed() {
                                c.churn_errors.push(format!("migrate {t}: {e}"));
                            }
                            println!(
                                "  migration v{v}: {} tenants in {:.1?}",
                                report.changed().count(),
                                t.elapsed()
                            );
                        }
                        Err(e) => c.churn_errors.push(format!("migrate_all v{v}: {e}")),
                    }
                    continue;
                }
                let v = version.load(Ordering::SeqCst) as i64;
                match k % 3 {
                    // Create a new churn tenant, at the newest version.
                    0 => {
                        let name = format!("{run}_n{k}");
                        let h = Tenants::new(admin.clone(), migrator(v))
                            .unwrap()
                            .with_registry(&registry)
                            .unwrap();
                        let result = h.create(&name).await;
                        let mut c = churn.lock().unwrap();
                        match result {
                            Ok(_) => {
                                c.created += 1;
                                c.live.insert(name.clone(), name);
                                publish(&c);
                            }
                            Err(e) => c.churn_errors.push(format!("create {name}: {e}")),
                        }
                    }
                    // Rename one. Clients keep sending requests to the old name while the
                    // rename runs (it is marked as going, so their failures count as
                    // expected), and use the new name once it is published.
                    1 => {
                        let pick = {
                            let mut c = churn.lock().unwrap();
                            let n = c.live.len().max(1);
                            let pick = c.live.keys().nth(k % n).cloned();
                            if let Some(p) = &pick {
                                c.gone.insert(p.clone());
                            }
                            pick
                        };
                        if let Some(from) = pick {
                            let to = format!("{run}_r{k}");
                            let result = app_tenants.rename(&from, &to).await;
                            let mut c = churn.lock().unwrap();
                            match result {
                                Ok(_) => {
                                    c.renamed += 1;
                                    let id = c.live.remove(&from).unwrap();
                                    c.live.insert(to, id);
                                }
                                Err(e) => {
                                    c.churn_errors.push(format!("rename {from}: {e}"));
                                    c.gone.remove(&from);
                                }
                            }
                            publish(&c);
                        }
                    }
                    // Drop one, likewise still requested while it is dropped.
                    _ => {
                        let pick = {
                            let mut c = churn.lock().unwrap();
                            let pick = c.live.keys().max().cloned();
                            if let Some(p) = &pick {
                                c.gone.insert(p.clone());
                            }
                            pick
                        };
                        if let Some(name) = pick {
                            let result = app_tenants.drop(&name).await;
                            let mut c = churn.lock().unwrap();
                            match result {
                                Ok(_) => c.dropped += 1,
                                Err(e) => c.churn_errors.push(format!("drop {name}: {e}")),
                            }
                            c.live.remove(&name);
                            publish(&c);
                        }
                    }
                }
            }
        })
    };

    // The clients, in alternating slices: tenancy, baseline, tenancy, ...
    let tallies = [
        Arc::new(Mutex::new(Tally::default())),
        Arc::new(Mutex::new(Tally::default())),
    ];
    let start = Instant::now();
    let mut slice = 0usize;
    while start.elapsed() < s.duration {
        let side = slice % 2;
        let addr = if side == 0 { lib_addr } else { plain_addr };
        let slice_end = Instant::now() + s.slice;
        let slice_start = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for c in 0..s.clients {
            let (tally, stable, live_list, churn) = (
                tallies[side].clone(),
                stable.clone(),
                live_list.clone(),
                churn.clone(),
            );
            let max = s.max_requests;
            clients.spawn(async move {
                let mut conn = Conn::new(addr);
                let mut rng = (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ (slice as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut local = Tally::default();
                while Instant::now() < slice_end {
                    if tally.lock().unwrap().requests + local.requests >= max {
                        break;
                    }
                    // 90 % of requests to stable tenants, 10 % to churn ones.
                    let r = next();
                    let (name, id, is_churn) = if r % 10 != 0 {
                        let n = &stable[(r / 10) as usize % stable.len()];
                        (n.clone(), n.clone(), false)
                    } else {
                        let l = live_list.read().unwrap();
                        if l.is_empty() {
                            continue;
                        }
                        let (n, id) = &l[(r / 10) as usize % l.len()];
                        (n.clone(), id.clone(), true)
                    };
                    let write = next() % 10 < 3;
                    let body = format!(r#"{{"name":"{id}","position":"p{}"}}"#, next() % 1000);
                    let t = Instant::now();
                    let result = if write {
                        conn.send("POST", &name, Some(&body)).await
                    } else {
                        conn.send("GET", &name, None).await
                    };
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    local.requests += 1;
                    let expected_status = if write { 201 } else { 200 };
                    // A success's body must parse: as the stored row of a write, as the rows
                    // of a read.
                    let parsed = match &result {
                        Ok((status, body)) if *status == expected_status => Some(if write {
                            serde_json::from_slice::<Guard>(body).map(|g| vec![g])
                        } else {
                            serde_json::from_slice::<Vec<Guard>>(body)
                        }),
                        _ => None,
                    };
                    match (result, parsed) {
                        (Ok(_), Some(Ok(rows))) => {
                            local.ok += 1;
                            local.latencies_us.push(us);
                            if write {
                                local.writes += 1;
                            } else {
                                local.reads += 1;
                            }
                            for row in rows {
                                local.rows_checked += 1;
                                if row.name != id {
                                    local.cross_tenant += 1;
                                    if local.examples.len() < 5 {
                                        local.examples.push(format!(
                                            "tenant {name} (identity {id}) returned a row of {}",
                                            row.name
                                        ));
                                    }
                                }
                            }
                        }
                        (Ok((status, body)), Some(Err(e))) => {
                            *local
                                .unexpected_errors
                                .entry(format!("HTTP {status} with an unreadable body"))
                                .or_default() += 1;
                            if local.examples.len() < 5 {
                                local.examples.push(format!(
                                    "{name}: HTTP {status}, body {:?}: {e}",
                                    excerpt(&body)
                                ));
                            }
                        }
                        (other, _) => {
                            // Expected only for a churn tenant withdrawn (being renamed or
                            // dropped, or gone) since it was picked, and only as documented: a
                            // 404 saying the tenant is unknown.
                            let withdrawn = is_churn && {
                                let c = churn.lock().unwrap();
                                c.gone.contains(&name) || !c.live.contains_key(&name)
                            };
                            let expected = withdrawn
                                && matches!(&other, Ok((status, body)) if is_unknown_tenant(*status, body, &name));
                            let kind = match &other {
                                Ok((status, _)) if expected => format!("HTTP {status} {UNKNOWN_TENANT}"),
                                Ok((status, _)) => format!("HTTP {status}"),
                                Err(e) => format!("io {:?}", e.kind()),
                            };
                            let bucket = if expected {
                                &mut local.expected_errors
                            } else {
                                &mut local.unexpected_errors
                            };
                            *bucket.entry(kind).or_default() += 1;
                            if !expected && local.examples.len() < 5 {
                                local.examples.push(format!(
                                    "{name} (withdrawn: {withdrawn}): {:?}",
                                    other.map(|(s, b)| (s, excerpt(&b)))
                                ));
                            }
                        }
                    }
                }
                let mut t = tally.lock().unwrap();
                t.requests += local.requests;
                t.ok += local.ok;
                t.reads += local.reads;
                t.writes += local.writes;
                t.rows_checked += local.rows_checked;
                t.cross_tenant += local.cross_tenant;
                for (k, v) in local.expected_errors {
                    *t.expected_errors.entry(k).or_default() += v;
                }
                for (k, v) in local.unexpected_errors {
                    *t.unexpected_errors.entry(k).or_default() += v;
                }
                t.latencies_us.extend(local.latencies_us);
                t.examples.extend(local.examples);
            });
        }
        while let Some(r) = clients.join_next().await {
            r.unwrap();
        }
        tallies[side].lock().unwrap().busy += slice_start.elapsed();
        slice += 1;
    }
    stop.store(true, Ordering::SeqCst);
    background.await.unwrap();

    // Report.
    let mut report = Vec::new();
    for (side, label) in [(0, "tenancy"), (1, "plain sqlx")] {
        let mut t = tallies[side].lock().unwrap();
        t.latencies_us.sort_unstable();
        let pct = |p: f64| {
            if t.latencies_us.is_empty() {
                0.0
            } else {
                t.latencies_us[((t.latencies_us.len() - 1) as f64 * p) as usize] as f64 / 1000.0
            }
        };
        let rate = t.ok as f64 / t.busy.as_secs_f64();
        report.push((rate, pct(0.5), pct(0.99)));
        println!(
            "{label:>10}: {} requests ({} reads, {} writes ok) in {:.1?}: {:.0} ok/s, p50 {:.2} ms, p99 {:.2} ms; rows checked {}, cross-tenant {}; expected errors {:?}; unexpected errors {:?}",
            t.requests,
            t.reads,
            t.writes,
            t.busy,
            rate,
            pct(0.5),
            pct(0.99),
            t.rows_checked,
            t.cross_tenant,
            t.expected_errors,
            t.unexpected_errors
        );
        for e in t.examples.iter().take(5) {
            println!("            {e}");
        }
    }
    let c = std::mem::take(&mut *churn.lock().unwrap());
    println!(
        "background: {} creates, {} renames, {} drops, {} migrations ({} tenant migrations); errors: {}",
        c.created,
        c.renamed,
        c.dropped,
        c.migrations,
        c.migrated_tenants,
        c.churn_errors.len()
    );
    for e in c.churn_errors.iter().take(5) {
        println!("            {e}");
    }
    println!(
        "ratios (tenancy / plain): throughput {:.3}, p50 latency {:.3}, p99 latency {:.3}",
        report[0].0 / report[1].0,
        report[0].1 / report[1].1,
        report[0].2 / report[1].2
    );
    let failed = tallies.iter().any(|t| {
        let t = t.lock().unwrap();
        t.cross_tenant > 0 || !t.unexpected_errors.is_empty()
    }) || !c.churn_errors.is_empty();

    // Clean up everything this run made.
    let left = handle(version.load(Ordering::SeqCst) as i64)
        .list()
        .await
        .unwrap_or_default();
    for t in &left {
        let _ = app_tenants.drop(t.as_str()).await;
    }
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{registry}\" CASCADE"
    )))
    .execute(&admin_pool)
    .await;
    println!("cleanup: dropped {} tenants and the registry", left.len());
    if failed {
        eprintln!("FAILED: a cross-tenant row, an unexpected error, or a background error");
        std::process::exit(1);
    }
    println!("OK: no cross-tenant row, no unexpected error");
}
