//! Real HTTP requests to a server on 127.0.0.1, sent as raw HTTP/1.1 so the `Host` header can be
//! anything a client can send. The handles are on PostgreSQL (`DATABASE_URL`, or a private
//! throwaway cluster) and, for the `mysql` test, MySQL / MariaDB (`MYSQL_URL`, or a private
//! throwaway server); the binary says before its tests start which of those run (see
//! `tenancy_testdb::select`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use sqlx::mysql::MySqlPool;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, MySql};
use tenancy_axum::{
    from_fn, CacheConfig, Clock, CurrentTenant, Header, PathSegment, Resolve, Subdomain,
    TenantCache, TenantLayer, WhenMissing,
};
use tenancy_core::Tenants;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use tenancy_testdb::cleanup::Leftovers;
use tenancy_testdb::fixtures::{migrator, MYSQL, POSTGRES};
use tenancy_testdb::select::Backend;

/// The servers each test needs, by its name.
fn needs(test: &str) -> &'static [Backend] {
    if test.contains("mysql") {
        &[Backend::Mysql]
    } else {
        &[Backend::Postgres]
    }
}

tenancy_testdb::select_tests!(needs);

// ---------------------------------------------------------------------------
// Fixture: a private registry with tenants holding a `guards` table
// ---------------------------------------------------------------------------

fn database_url() -> String {
    tenancy_testdb::database_url().unwrap_or_else(|e| panic!("{e}"))
}

/// A pool and a `Tenants` handle on a private registry. Every tenant of the registry and the
/// registry itself are dropped when the fixture is dropped, even after a failed assertion.
struct Db {
    pool: PgPool,
    tenants: Tenants,
    registry: String,
    _cleanup: Leftovers,
}

impl Db {
    async fn new() -> Self {
        let pool = tenancy_testdb::postgres::pool(4).await;
        let registry = tenancy_testdb::unique_name("reg");
        Db {
            tenants: self::handle(&pool, &registry),
            _cleanup: Leftovers::on(&pool).registry(&registry),
            pool,
            registry,
        }
    }

    /// A second handle on the same registry, built separately: caches subscribed to the first
    /// one do not hear about its changes.
    fn other_handle(&self) -> Tenants {
        handle(&self.pool, &self.registry)
    }

    async fn create(&self, prefix: &str) -> String {
        let name = tenancy_testdb::unique_name(prefix);
        self.tenants.create(&name).await.unwrap();
        name
    }
}

fn handle(pool: &PgPool, registry: &str) -> Tenants {
    Tenants::new(pool.clone(), migrator(POSTGRES.v1()))
        .unwrap()
        .with_registry(registry)
        .unwrap()
}

// ---------------------------------------------------------------------------
// The app: per-tenant reads and writes with raw SQL on "<tenant>".guards
// ---------------------------------------------------------------------------

async fn list(State(pool): State<PgPool>, CurrentTenant(tenant): CurrentTenant) -> String {
    let sql = format!("SELECT name FROM {}.guards ORDER BY id", tenant.quoted());
    let names: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await
        .unwrap();
    format!("{tenant}:{}", names.join(","))
}

async fn add(
    State(pool): State<PgPool>,
    CurrentTenant(tenant): CurrentTenant,
    name: String,
) -> StatusCode {
    let sql = format!(
        "INSERT INTO {}.guards (name, position) VALUES ($1, 'Guard')",
        tenant.quoted()
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    StatusCode::CREATED
}

async fn whoami(tenant: Option<CurrentTenant>) -> String {
    tenant.map_or_else(|| "none".to_owned(), |t| t.to_string())
}

/// Reads the tenant from `tenancy::context`, as code without an extractor would.
async fn from_context() -> String {
    tenancy_core::context::current().map_or_else(|| "none".to_owned(), |t| t.to_string())
}

async fn required(CurrentTenant(tenant): CurrentTenant) -> String {
    tenant.to_string()
}

/// The tenant and the container its rows are in.
async fn placed(CurrentTenant(tenant): CurrentTenant) -> String {
    format!("{tenant}@{}", tenant.container())
}

fn app(db: &Db, layer: TenantLayer) -> Router {
    Router::new()
        .route("/guards", get(list).post(add))
        .route("/placed", get(placed))
        .route("/whoami", get(whoami))
        .route("/required", get(required))
        .route("/context", get(from_context))
        .route("/t/{tenant}/whoami", get(whoami))
        .layer(layer)
        .with_state(db.pool.clone())
}

fn subdomain_layer(db: &Db) -> TenantLayer {
    TenantLayer::new(TenantCache::new(&db.tenants), Subdomain::new("example.com"))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    /// The `error` code of a JSON refusal.
    fn code(&self) -> String {
        self.field("error")
    }

    /// The `message` of a JSON refusal.
    fn message(&self) -> String {
        self.field("message")
    }

    fn field(&self, name: &str) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body));
        json[name].as_str().unwrap_or_default().to_owned()
    }
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));

    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the server answered within 30 s");
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let content_type = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    Reply {
        status: status.parse().unwrap(),
        content_type,
        body: body.to_owned(),
    }
}

async fn get_host(addr: SocketAddr, path: &str, host: &str) -> Reply {
    send(addr, "GET", path, host, &[], "").await
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_tenants_stay_isolated() {
    let db = Db::new().await;
    let (a, b) = (db.create("iso_a").await, db.create("iso_b").await);
    let resolver = Subdomain::new("example.com").or(Header::new("x-tenant"));
    let layer = TenantLayer::new(TenantCache::new(&db.tenants), resolver);
    let addr = serve(app(&db, layer)).await;
    let host_a = format!("{a}.example.com");

    let created = send(addr, "POST", "/guards", &host_a, &[], "abu").await;
    assert_eq!(created.status, 201, "{created:?}");
    let by_header = [("X-Tenant", b.as_str())];
    let created = send(addr, "POST", "/guards", "api.other", &by_header, "jafar").await;
    assert_eq!(created.status, 201, "{created:?}");

    let seen_by_a = get_host(addr, "/guards", &host_a).await;
    assert_eq!(seen_by_a.status, 200);
    assert_eq!(seen_by_a.body, format!("{a}:abu"));
    let seen_by_b = get_host(addr, "/guards", &format!("{b}.example.com")).await;
    assert_eq!(seen_by_b.body, format!("{b}:jafar"));
    let a_by_header = send(addr, "GET", "/guards", "x", &[("x-tenant", &a)], "").await;
    assert_eq!(a_by_header.body, format!("{a}:abu"));
}

#[tokio::test]
async fn a_row_level_tenant_reaches_the_handler_placed_in_its_container() {
    let db = Db::new().await;
    let container = db.create("rows").await;
    let own = db.create("own").await;
    let name = tenancy_testdb::unique_name("acme");
    let container_t = db.tenants.tenant(&container).await.unwrap();
    db.tenants.create_in(&name, &container_t).await.unwrap();
    // One cache heard the creation; the other (another handle) asks the database.
    for tenants in [db.tenants.clone(), db.other_handle()] {
        let layer = TenantLayer::new(TenantCache::new(&tenants), Header::new("x-tenant"));
        let addr = serve(app(&db, layer)).await;
        for _ in 0..2 {
            let reply = send(addr, "GET", "/placed", "x", &[("x-tenant", &name)], "").await;
            assert_eq!(reply.status, 200, "{reply:?}");
            assert_eq!(reply.body, format!("{name}@{container}"));
            let reply = send(addr, "GET", "/placed", "x", &[("x-tenant", &own)], "").await;
            assert_eq!(reply.body, format!("{own}@{own}"));
        }
    }
    db.tenants.drop(&name).await.unwrap();
}

/// A promote through the layer's own handle reaches its cache (`TenantEvent::Moved`): the next
/// request's handler gets the tenant in its own schema, not the shared one it was cached in.
#[tokio::test]
async fn a_promoted_tenant_reaches_the_handler_in_its_own_schema() {
    let db = Db::new().await;
    let container = db.create("rows").await;
    let name = tenancy_testdb::unique_name("acme");
    let container_t = db.tenants.tenant(&container).await.unwrap();
    db.tenants.create_in(&name, &container_t).await.unwrap();
    let layer = TenantLayer::new(TenantCache::new(&db.tenants), Header::new("x-tenant"));
    let addr = serve(app(&db, layer)).await;
    let reply = send(addr, "GET", "/placed", "x", &[("x-tenant", &name)], "").await;
    assert_eq!(reply.body, format!("{name}@{container}"));
    db.tenants.promote(&name).await.unwrap();
    let reply = send(addr, "GET", "/placed", "x", &[("x-tenant", &name)], "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, format!("{name}@{name}"));
    db.tenants.drop(&name).await.unwrap();
}

#[tokio::test]
async fn hostile_hosts_are_refused() {
    let db = Db::new().await;
    let t = db.create("host").await;
    let addr = serve(app(&db, subdomain_layer(&db))).await;
    let upper = t.to_ascii_uppercase();
    let long = "a".repeat(10 * 1024);
    let drop = "\"; DROP SCHEMA public CASCADE; --";
    let unknown = tenancy_testdb::unique_name("nosuch");

    let ok = |s: &str| (200, s.to_owned());
    let refused = |status: u16, code: &str| (status, code.to_owned());
    let cases: Vec<(String, (u16, String))> = vec![
        // Not under the base domain: the request names no tenant.
        ("evil.com".into(), refused(400, "missing_tenant")),
        (
            format!("{t}.example.com.evil.com"),
            refused(400, "missing_tenant"),
        ),
        (
            format!("{t}.example.com:80.evil.com"),
            refused(400, "missing_tenant"),
        ),
        (drop.into(), refused(400, "missing_tenant")),
        (long.clone(), refused(400, "missing_tenant")),
        ("example.com".into(), refused(400, "missing_tenant")),
        ("[::1]:8080".into(), refused(400, "missing_tenant")),
        // Under it, but not a valid tenant name.
        (
            format!("x{drop}.example.com"),
            refused(400, "malformed_tenant"),
        ),
        (
            format!("{long}.example.com"),
            refused(400, "malformed_tenant"),
        ),
        (
            "<script>alert(1)</script>.example.com".into(),
            refused(400, "malformed_tenant"),
        ),
        (
            format!("a.{t}.example.com"),
            refused(400, "malformed_tenant"),
        ),
        (".example.com".into(), refused(400, "malformed_tenant")),
        (
            "public.example.com".into(),
            refused(400, "malformed_tenant"),
        ),
        (
            "pg_catalog.example.com".into(),
            refused(400, "malformed_tenant"),
        ),
        (
            format!("{}.example.com", db.registry),
            refused(400, "malformed_tenant"),
        ),
        // Valid, but no such tenant.
        (
            format!("{unknown}.example.com"),
            refused(404, "unknown_tenant"),
        ),
        // Host names are case-insensitive, and the port is not part of the name.
        (format!("{upper}.EXAMPLE.COM"), ok(&t)),
        (format!("{t}.example.com:8080"), ok(&t)),
        (format!("{upper}.Example.Com:443"), ok(&t)),
        (format!("{t}.example.com."), ok(&t)),
    ];

    for (host, (status, expected)) in &cases {
        let reply = get_host(addr, "/required", host).await;
        let shown: String = host.chars().take(60).collect();
        assert_eq!(reply.status, *status, "Host {shown:?}: {reply:?}");
        if *status == 200 {
            assert_eq!(&reply.body, expected, "Host {shown:?}");
            continue;
        }
        assert_eq!(reply.content_type, "application/json", "Host {shown:?}");
        assert_eq!(&reply.code(), expected, "Host {shown:?}: {}", reply.body);
        assert!(
            reply.body.len() < 200,
            "Host {shown:?}: long body {:?}",
            reply.body
        );
        for fragment in ["DROP", "<script", "evil", "aaaaaaaaaa", "EXAMPLE", "\\\""] {
            assert!(
                !reply.body.contains(fragment),
                "Host {shown:?}: body echoes {fragment:?}: {}",
                reply.body
            );
        }
        if *status == 404 {
            // The only name a body may show: one that passed the naming rule.
            assert!(reply.body.contains(&unknown), "{}", reply.body);
        }
    }
}

#[tokio::test]
async fn header_path_and_closure_resolvers() {
    let db = Db::new().await;
    let t = db.create("res").await;
    let cache = TenantCache::new(&db.tenants);

    let header = serve(app(
        &db,
        TenantLayer::new(cache.clone(), Header::new("X-Tenant")),
    ))
    .await;
    let ask = |value: String| async move {
        send(
            header,
            "GET",
            "/required",
            "localhost",
            &[("X-Tenant", &value)],
            "",
        )
        .await
    };
    assert_eq!(ask(t.clone()).await.body, t);
    // A header is not a host name: no case folding.
    let upper = ask(t.to_ascii_uppercase()).await;
    assert_eq!(
        (upper.status, upper.code()),
        (400, "malformed_tenant".into())
    );
    let mixed = ask("Tenant1".into()).await;
    assert_eq!(
        (mixed.status, mixed.code()),
        (400, "malformed_tenant".into())
    );
    // Upper case is named as the problem, not the first character's class.
    let shouting = ask("TENANT_1".into()).await;
    assert_eq!(
        (shouting.status, shouting.message()),
        (
            400,
            "malformed tenant name: upper-case letters are not allowed; a tenant name holds \
             only a-z, 0-9 and _"
                .into()
        )
    );
    assert_eq!(mixed.message(), shouting.message());
    let none = get_host(header, "/required", "localhost").await;
    assert_eq!((none.status, none.code()), (400, "missing_tenant".into()));
    // Two headers name two tenants (even the same one twice): refused as such.
    for (first, second) in [(t.as_str(), t.as_str()), (t.as_str(), "other")] {
        let twice = [("X-Tenant", first), ("X-Tenant", second)];
        let twice = send(header, "GET", "/required", "localhost", &twice, "").await;
        assert_eq!(
            (twice.status, twice.code(), twice.message()),
            (
                400,
                "ambiguous_tenant".into(),
                "the request names two or more tenants (a header given more than once); name one"
                    .into()
            )
        );
    }

    let path = serve(app(
        &db,
        TenantLayer::new(cache.clone(), PathSegment::new(1)),
    ))
    .await;
    let by_path = get_host(path, &format!("/t/{t}/whoami"), "localhost").await;
    assert_eq!((by_path.status, by_path.body.as_str()), (200, t.as_str()));
    let escaped = get_host(path, "/t/a%2Fb/whoami", "localhost").await;
    assert_eq!(
        (escaped.status, escaped.code()),
        (400, "malformed_tenant".into())
    );

    let query = from_fn(|parts| {
        parts
            .uri
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("tenant=").map(str::to_owned))
    });
    let closure = serve(app(&db, TenantLayer::new(cache, query))).await;
    let by_query = get_host(closure, &format!("/required?x=1&tenant={t}"), "localhost").await;
    assert_eq!((by_query.status, by_query.body.as_str()), (200, t.as_str()));
    let no_query = get_host(closure, "/required", "localhost").await;
    assert_eq!(no_query.status, 400);
}

#[tokio::test]
async fn chain_order_decides_and_the_first_candidate_wins() {
    let db = Db::new().await;
    let (a, b) = (db.create("chain_a").await, db.create("chain_b").await);
    let cache = TenantCache::new(&db.tenants);
    let host_a = format!("{a}.example.com");
    let header_b = [("x-tenant", b.as_str())];

    let header_first = Header::new("x-tenant").or(Subdomain::new("example.com"));
    let addr = serve(app(&db, TenantLayer::new(cache.clone(), header_first))).await;
    let reply = send(addr, "GET", "/required", &host_a, &header_b, "").await;
    assert_eq!(reply.body, b);
    let fallback = get_host(addr, "/required", &host_a).await;
    assert_eq!(fallback.body, a);
    // A malformed first candidate is refused; it does not fall through to the next resolver.
    let bad = send(
        addr,
        "GET",
        "/required",
        &host_a,
        &[("x-tenant", "Bad!")],
        "",
    )
    .await;
    assert_eq!((bad.status, bad.code()), (400, "malformed_tenant".into()));
    // Nor does a header given twice: the host is not asked.
    let twice = [("x-tenant", b.as_str()), ("x-tenant", b.as_str())];
    let twice = send(addr, "GET", "/required", &host_a, &twice, "").await;
    assert_eq!(
        (twice.status, twice.code()),
        (400, "ambiguous_tenant".into())
    );

    let host_first = Subdomain::new("example.com").or(Header::new("x-tenant"));
    let addr = serve(app(&db, TenantLayer::new(cache, host_first))).await;
    let reply = send(addr, "GET", "/required", &host_a, &header_b, "").await;
    assert_eq!(reply.body, a);
    let fallback = send(addr, "GET", "/required", "evil.com", &header_b, "").await;
    assert_eq!(fallback.body, b);
}

#[tokio::test]
async fn optional_tenant_mode_lets_requests_without_one_through() {
    let db = Db::new().await;
    let t = db.create("opt").await;
    let layer = subdomain_layer(&db).when_missing(WhenMissing::Continue);
    let addr = serve(app(&db, layer)).await;

    let none = get_host(addr, "/whoami", "example.com").await;
    assert_eq!((none.status, none.body.as_str()), (200, "none"));
    let some = get_host(addr, "/whoami", &format!("{t}.example.com")).await;
    assert_eq!((some.status, some.body.as_str()), (200, t.as_str()));
    // Only a missing name passes; malformed and unknown names are still refused.
    let bad = get_host(addr, "/whoami", "Bad_Name!.example.com").await;
    assert_eq!((bad.status, bad.code()), (400, "malformed_tenant".into()));
    let unknown = get_host(addr, "/whoami", "nosuch_tenant_x.example.com").await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "unknown_tenant".into())
    );
    // A handler that requires a tenant still refuses the request without one.
    let required = get_host(addr, "/required", "example.com").await;
    assert_eq!(
        (required.status, required.code()),
        (400, "missing_tenant".into())
    );
    // Two names are refused even when a tenant is optional.
    let by_header = TenantLayer::new(TenantCache::new(&db.tenants), Header::new("x-tenant"))
        .when_missing(WhenMissing::Continue);
    let addr = serve(app(&db, by_header)).await;
    let twice = [("x-tenant", t.as_str()), ("x-tenant", t.as_str())];
    let twice = send(addr, "GET", "/whoami", "localhost", &twice, "").await;
    assert_eq!(
        (twice.status, twice.code()),
        (400, "ambiguous_tenant".into())
    );
}

#[tokio::test]
async fn the_handler_runs_with_the_request_tenant_as_the_current_one() {
    let db = Db::new().await;
    let t = db.create("ctx").await;
    let layer = subdomain_layer(&db).when_missing(WhenMissing::Continue);
    let addr = serve(app(&db, layer)).await;
    let some = get_host(addr, "/context", &format!("{t}.example.com")).await;
    assert_eq!((some.status, some.body.as_str()), (200, t.as_str()));
    let none = get_host(addr, "/context", "example.com").await;
    assert_eq!((none.status, none.body.as_str()), (200, "none"));
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_500_that_says_so() {
    let app = Router::new()
        .route("/required", get(required))
        .route("/context", get(from_context))
        .route("/whoami", get(whoami));
    let addr = serve(app).await;
    for path in ["/required", "/whoami"] {
        let reply = get_host(addr, path, "acme.example.com").await;
        assert_eq!(reply.status, 500, "{reply:?}");
        assert_eq!(reply.code(), "tenant_layer_missing");
        assert!(reply.body.contains("TenantLayer"), "{}", reply.body);
    }
}

#[tokio::test]
async fn changes_through_the_handle_take_effect_at_once() {
    let db = Db::new().await;
    let long = Duration::from_secs(600);
    let config = CacheConfig::default()
        .with_positive_ttl(long)
        .with_negative_ttl(long);
    let cache = TenantCache::with_config(&db.tenants, config);
    let layer = TenantLayer::new(cache.clone(), Subdomain::new("example.com"));
    let addr = serve(app(&db, layer)).await;
    let status = |name: String| async move {
        get_host(addr, "/required", &format!("{name}.example.com"))
            .await
            .status
    };

    let name = tenancy_testdb::unique_name("life");
    assert_eq!(status(name.clone()).await, 404); // now cached as "does not exist"
    db.tenants.create(&name).await.unwrap();
    assert_eq!(status(name.clone()).await, 200);

    let renamed = tenancy_testdb::unique_name("life_renamed");
    db.tenants.rename(&name, &renamed).await.unwrap();
    assert_eq!(status(name.clone()).await, 404);
    assert_eq!(status(renamed.clone()).await, 200);

    db.tenants.drop(&renamed).await.unwrap();
    assert_eq!(status(renamed.clone()).await, 404);
}

/// Time that moves only when the test says so.
#[derive(Clone)]
struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    fn new() -> Self {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn a_tenant_dropped_elsewhere_resolves_from_the_cache_until_the_ttl_ends() {
    let db = Db::new().await;
    let t = db.create("ttl").await;
    let ttl = Duration::from_secs(30);
    let config = CacheConfig::default()
        .with_positive_ttl(ttl)
        .with_negative_ttl(ttl);
    let clock = ManualClock::new();
    let cache = TenantCache::with_clock(&db.tenants, config, clock.clone());
    let addr = serve(app(
        &db,
        TenantLayer::new(cache, Subdomain::new("example.com")),
    ))
    .await;
    let host = format!("{t}.example.com");
    assert_eq!(get_host(addr, "/required", &host).await.status, 200);

    // Dropped through a handle the cache did not subscribe to: the database says no, the
    // cache still says yes until its answer expires.
    db.other_handle().drop(&t).await.unwrap();
    clock.advance(ttl - Duration::from_millis(1));
    let reply = get_host(addr, "/required", &host).await;
    assert_eq!(reply.status, 200, "answered from the cache: {reply:?}");

    clock.advance(Duration::from_millis(1));
    let reply = get_host(addr, "/required", &host).await;
    assert_eq!((reply.status, reply.code()), (404, "unknown_tenant".into()));
}

#[tokio::test]
async fn the_cache_stays_within_its_size_bound() {
    let db = Db::new().await;
    let t = db.create("bound").await;
    let cache = TenantCache::with_config(&db.tenants, CacheConfig::default().with_capacity(8));
    let layer = TenantLayer::new(cache.clone(), Subdomain::new("example.com"));
    let addr = serve(app(&db, layer)).await;
    let real = format!("{t}.example.com");

    assert_eq!(get_host(addr, "/required", &real).await.status, 200);
    for i in 0..40 {
        let reply = get_host(addr, "/required", &format!("random_{i}.example.com")).await;
        assert_eq!(reply.status, 404);
        assert!(cache.len() <= 8, "{} entries", cache.len());
    }
    assert_eq!(get_host(addr, "/required", &real).await.status, 200);
    assert!(cache.len() <= 8);
}

#[tokio::test]
async fn a_failed_lookup_is_a_503_without_details() {
    let db = Db::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url())
        .await
        .unwrap();
    let tenants = handle(&pool, &db.registry);
    pool.close().await;
    let layer = TenantLayer::new(TenantCache::new(&tenants), Subdomain::new("example.com"));
    let addr = serve(app(&db, layer)).await;

    let reply = get_host(addr, "/required", "acme.example.com").await;
    assert_eq!(
        (reply.status, reply.code()),
        (503, "tenant_lookup_failed".into())
    );
    assert!(
        !reply.body.to_lowercase().contains("pool"),
        "{}",
        reply.body
    );
}

// ---------------------------------------------------------------------------
// The layer over a MySQL / MariaDB handle (a database per tenant)
// ---------------------------------------------------------------------------

async fn mysql_list(State(pool): State<MySqlPool>, CurrentTenant(tenant): CurrentTenant) -> String {
    // The name passed the naming rule (`[a-z_][a-z0-9_]*`): safe between backticks.
    let sql = format!("SELECT name FROM `{tenant}`.guards ORDER BY id");
    let names: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await
        .unwrap();
    format!("{tenant}:{}", names.join(","))
}

#[tokio::test]
async fn a_mysql_handle_resolves_tenants_and_unknown_ones_are_404() {
    let pool = tenancy_testdb::mysql::pool(4).await;
    let registry = tenancy_testdb::unique_name("myreg");
    let (a, b) = (
        tenancy_testdb::unique_name("my_a"),
        tenancy_testdb::unique_name("my_b"),
    );
    let _cleanup = Leftovers::on(&pool).registry(&registry);
    let tenants: Tenants<MySql> = Tenants::new(pool.clone(), migrator(MYSQL.v1()))
        .unwrap()
        .with_registry(&registry)
        .unwrap();
    tenants.create(&a).await.unwrap();
    tenants.create(&b).await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO `{a}`.guards (name, position) VALUES (?, 'Guard'), (?, 'Guard')"
    )))
    .bind("abu")
    .bind("jafar")
    .execute(&pool)
    .await
    .unwrap();

    let layer = TenantLayer::new(TenantCache::new(&tenants), Subdomain::new("example.com"));
    let app = Router::new()
        .route("/guards", get(mysql_list))
        .layer(layer)
        .with_state(pool.clone());
    let addr = serve(app).await;

    let seen_by_a = get_host(addr, "/guards", &format!("{a}.example.com")).await;
    assert_eq!(
        (seen_by_a.status, seen_by_a.body.as_str()),
        (200, format!("{a}:abu,jafar").as_str())
    );
    let seen_by_b = get_host(addr, "/guards", &format!("{b}.example.com")).await;
    assert_eq!(
        (seen_by_b.status, seen_by_b.body.as_str()),
        (200, format!("{b}:").as_str())
    );

    let unknown = tenancy_testdb::unique_name("nosuch");
    let missing = get_host(addr, "/guards", &format!("{unknown}.example.com")).await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "unknown_tenant".into())
    );
    let server_db = get_host(addr, "/guards", "mysql.example.com").await;
    assert_eq!(
        (server_db.status, server_db.code()),
        (400, "malformed_tenant".into()),
        "the server's own databases are no tenants"
    );

    // Dropped through the handle: the cache hears of it at once.
    tenants.drop(&b).await.unwrap();
    let dropped = get_host(addr, "/guards", &format!("{b}.example.com")).await;
    assert_eq!(
        (dropped.status, dropped.code()),
        (404, "unknown_tenant".into())
    );
    pool.close().await;
}
