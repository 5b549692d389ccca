//! Probe: sqlx 0.9 through PgBouncer (transaction pooling).
//! Usage: cargo run --release --example pgbouncer_probe -- <variant> [url]  (PgBouncer in
//! transaction mode, e.g. `bash .ci/pgbouncer/start.sh`, url postgres://postgres@127.0.0.1:6432/test)
//!    variants: a b c d direct e f params all
//! Bounded: TASKS tasks x PER_TASK queries per load variant, 10 s timeout per query.
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TASKS: i32 = 8;
const POOL: u32 = 8;

#[derive(Default)]
struct Stats {
    ok: u64,
    failures: BTreeMap<String, u64>,
    crosstalk: u64,
    crosstalk_examples: Vec<String>,
}

fn norm(e: &sqlx::Error) -> String {
    let s = e.to_string();
    // collapse statement numbers: sqlx_s_17 -> sqlx_s_N
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        out.push(c);
        if out.ends_with("sqlx_s_") {
            while it.peek().is_some_and(|c| c.is_ascii_digit()) {
                it.next();
            }
            out.push('N');
        }
    }
    out.chars().take(160).collect()
}

async fn pool(url: &str, cache0: bool) -> PgPool {
    let mut opts = PgConnectOptions::from_str(url).unwrap();
    if cache0 {
        opts = opts.statement_cache_capacity(0);
    }
    PgPoolOptions::new()
        .max_connections(POOL)
        .min_connections(POOL)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await
        .unwrap()
}

/// mode: "plain" (default persistent), "np" (persistent(false)), "tx" (persistent(false) in a tx)
async fn load(name: &str, url: &str, cache0: bool, mode: &'static str, per_task: i32) -> f64 {
    let pool = pool(url, cache0).await;
    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let mut handles = vec![];
    for t in 0..TASKS {
        let pool = pool.clone();
        let stats = stats.clone();
        handles.push(tokio::spawn(async move {
            let sql = format!("select $1::int + {}*1000000", t + 1);
            let check = |i: i32,
                         r: Result<i32, sqlx::Error>,
                         st: &Stats|
             -> (bool, Option<String>, Option<String>) {
                let _ = st;
                match r {
                    Ok(v) if v == i + (t + 1) * 1_000_000 => (true, None, None),
                    Ok(v) => (
                        false,
                        None,
                        Some(format!(
                            "task {} i {} got {} (task {}'s statement)",
                            t + 1,
                            i,
                            v,
                            (v - i) / 1_000_000
                        )),
                    ),
                    Err(e) => (false, Some(norm(&e)), None),
                }
            };
            let mut i = 0;
            while i < per_task {
                let mut results: Vec<(i32, Result<i32, sqlx::Error>)> = vec![];
                let fut = async {
                    match mode {
                        "plain" | "np" => {
                            let q = sqlx::query(AssertSqlSafe(sql.clone()))
                                .bind(i)
                                .persistent(mode == "plain");
                            let r = q
                                .fetch_one(&pool)
                                .await
                                .and_then(|row| row.try_get::<i32, _>(0));
                            results.push((i, r));
                        }
                        _ => {
                            // begin; 2 queries; commit
                            match pool.begin().await {
                                Err(e) => results.push((i, Err(e))),
                                Ok(mut tx) => {
                                    let mut failed = false;
                                    for k in 0..2 {
                                        let q = sqlx::query(AssertSqlSafe(sql.clone()))
                                            .bind(i + k)
                                            .persistent(mode == "txp");
                                        let r = q
                                            .fetch_one(&mut *tx)
                                            .await
                                            .and_then(|row| row.try_get::<i32, _>(0));
                                        failed |= r.is_err();
                                        results.push((i + k, r));
                                        if failed {
                                            break;
                                        }
                                    }
                                    if !failed {
                                        if let Err(e) = tx.commit().await {
                                            results.push((-1, Err(e)));
                                        }
                                    }
                                }
                            }
                        }
                    }
                };
                let timed = tokio::time::timeout(Duration::from_secs(10), fut).await;
                let mut st = stats.lock().unwrap();
                if timed.is_err() {
                    *st.failures.entry("timeout 10s".into()).or_default() += 1;
                }
                for (ii, r) in results {
                    if ii == -1 {
                        if let Err(e) = r {
                            *st.failures
                                .entry(format!("commit: {}", norm(&e)))
                                .or_default() += 1;
                        }
                        continue;
                    }
                    let (ok, err, ct) = check(ii, r, &st);
                    if ok {
                        st.ok += 1;
                    }
                    if let Some(e) = err {
                        *st.failures.entry(e).or_default() += 1;
                    }
                    if let Some(c) = ct {
                        st.crosstalk += 1;
                        if st.crosstalk_examples.len() < 3 {
                            st.crosstalk_examples.push(c);
                        }
                    }
                }
                i += if mode.starts_with("tx") { 2 } else { 1 };
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let el = start.elapsed().as_secs_f64();
    let qps = {
        let st = stats.lock().unwrap();
        let total = st.ok + st.failures.values().sum::<u64>() + st.crosstalk;
        let qps = total as f64 / el;
        println!(
        "RESULT {name}: queries={total} ok={} failures={} crosstalk={} secs={el:.2} qps={qps:.0}",
        st.ok,
        st.failures.values().sum::<u64>(),
        st.crosstalk
    );
        for (m, n) in st.failures.iter() {
            println!("  fail x{n}: {m}");
        }
        for c in &st.crosstalk_examples {
            println!("  crosstalk example: {c}");
        }
        qps
    };
    pool.close().await;
    qps
}

async fn e_test(url: &str) {
    let pool = pool(url, false).await;
    // raw_sql multi-statement batch (simple protocol)
    let r = sqlx::raw_sql("select 1 as a; select 2 as a; select 3 as a")
        .fetch_all(&pool)
        .await;
    match r {
        Ok(rows) => println!(
            "E raw_sql 3 selects: ok, rows={:?}",
            rows.iter().map(|r| r.get::<i32, _>(0)).collect::<Vec<_>>()
        ),
        Err(e) => println!("E raw_sql 3 selects: FAIL {e}"),
    }
    let r = sqlx::raw_sql(
        "create temp table if not exists pgb_t(x int); insert into pgb_t values (1),(2); select count(*)::int from pgb_t; drop table pgb_t",
    )
    .fetch_all(&pool)
    .await;
    match r {
        Ok(rows) => println!(
            "E raw_sql temp-table batch (one implicit tx): ok, count={:?}",
            rows.first().map(|r| r.get::<i32, _>(0))
        ),
        Err(e) => println!("E raw_sql temp-table batch: FAIL {e}"),
    }
    // repeat a multi-statement raw_sql batch 500x concurrently
    let mut hs = vec![];
    let fails = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    for t in 0..TASKS {
        let pool = pool.clone();
        let fails = fails.clone();
        hs.push(tokio::spawn(async move {
            let sql = format!("select {t}; select {t}+1; select {t}+2");
            for _ in 0..100 {
                match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .fetch_all(&pool)
                    .await
                {
                    Ok(rows) if rows.len() == 3 && rows[2].get::<i32, _>(0) == t + 2 => {}
                    Ok(rows) => {
                        *fails
                            .lock()
                            .unwrap()
                            .entry(format!("wrong rows {}", rows.len()))
                            .or_default() += 1
                    }
                    Err(e) => *fails.lock().unwrap().entry(norm(&e)).or_default() += 1,
                }
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    println!(
        "E raw_sql 3-stmt batch x{} concurrently: failures={:?}",
        TASKS * 100,
        fails.lock().unwrap()
    );

    // pg_advisory_xact_lock: mutual exclusion across two transactions
    for persistent in [false, true] {
        let p1 = pool.clone();
        let p2 = pool.clone();
        let t0 = Instant::now();
        let a = tokio::spawn(async move {
            let mut tx = p1.begin().await?;
            sqlx::query("select pg_advisory_xact_lock($1)")
                .bind(4242i64)
                .persistent(persistent)
                .execute(&mut *tx)
                .await?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(t0.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let b = tokio::spawn(async move {
            let mut tx = p2.begin().await?;
            sqlx::query("select pg_advisory_xact_lock($1)")
                .bind(4242i64)
                .persistent(persistent)
                .execute(&mut *tx)
                .await?;
            let got = t0.elapsed();
            tx.commit().await?;
            Ok::<_, sqlx::Error>(got)
        });
        let ra = a.await.unwrap();
        let rb = b.await.unwrap();
        println!("E advisory_xact_lock persistent={persistent}: A released at {ra:?}, B acquired at {rb:?} (B must be >= A)");
    }
    // advisory xact lock with the raw_sql path inside tx
    {
        let mut tx = pool.begin().await.unwrap();
        let r = sqlx::raw_sql("select pg_advisory_xact_lock(4243); select 1")
            .execute(&mut *tx)
            .await;
        let held: Result<i64, _> = sqlx::query_scalar("select count(*) from pg_locks where locktype='advisory' and objid=4243 and pid=pg_backend_pid()")
            .persistent(false)
            .fetch_one(&mut *tx)
            .await;
        tx.commit().await.unwrap();
        println!(
            "E raw_sql advisory lock in tx: {:?}, held by same backend in tx: {:?}",
            r.map(|r| r.rows_affected()),
            held
        );
    }
    pool.close().await;
}

async fn f_test(url: &str) {
    // two independent clients (separate connections); A sets session GUCs, B reads.
    let opts = PgConnectOptions::from_str(url).unwrap();
    let mut a = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    a.execute("SET application_name = 'leak_A'").await.unwrap();
    a.execute("SET myapp.tenant = 'A'").await.unwrap();
    a.execute("SET search_path = leak_schema_a, public")
        .await
        .unwrap();
    a.execute("SET statement_timeout = '12345ms'")
        .await
        .unwrap();
    // SET LOCAL inside a transaction
    {
        let mut tx = a.begin().await.unwrap();
        tx.execute("SET LOCAL myapp.local = 'L'").await.unwrap();
        tx.commit().await.unwrap();
    }
    let a_pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .persistent(false)
        .fetch_one(&mut a)
        .await
        .unwrap();
    let a_see: (String, String, String) = sqlx::query_as(
        "select current_setting('application_name'), coalesce(current_setting('myapp.tenant', true),''), current_setting('search_path')",
    )
    .persistent(false)
    .fetch_one(&mut a)
    .await
    .unwrap();
    println!("F A (backend pid {a_pid}) sees its own: {a_see:?}");
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let n = 20;
    for _ in 0..n {
        let mut b = sqlx::PgConnection::connect_with(&opts).await.unwrap();
        let row: (i32, String, String, String, String, String) = sqlx::query_as(
            "select pg_backend_pid(), current_setting('application_name'), coalesce(current_setting('myapp.tenant', true),''), current_setting('search_path'), current_setting('statement_timeout'), coalesce(current_setting('myapp.local', true),'')",
        )
        .persistent(false)
        .fetch_one(&mut b)
        .await
        .unwrap();
        let same = row.0 == a_pid;
        let key = format!(
            "same_backend_as_A={same} application_name={:?} myapp.tenant={:?} search_path={:?} statement_timeout={:?} myapp.local={:?}",
            row.1, row.2, row.3, row.4, row.5
        );
        *counts.entry(key).or_default() += 1;
        b.close().await.unwrap();
    }
    println!("F B: {n} fresh client connections, each reading the settings once:");
    for (k, v) in counts {
        println!("  x{v}: {k}");
    }
    // cleanup: A resets
    a.execute("RESET ALL").await.unwrap();
    a.close().await.unwrap();
}

async fn params_test(url: &str) {
    // which startup parameters get through: default (extra_float_digits=2), application_name, options
    let base = PgConnectOptions::from_str(url).unwrap();
    for (label, opts) in [
        ("default", base.clone()),
        (
            "application_name=probe_app",
            base.clone().application_name("probe_app"),
        ),
        (
            "options search_path=opt_schema",
            base.clone().options([("search_path", "opt_schema")]),
        ),
        (
            "extra_float_digits(None)",
            base.clone().extra_float_digits(None),
        ),
    ] {
        match sqlx::PgConnection::connect_with(&opts).await {
            Ok(mut c) => {
                let r: Result<(String, String, String), _> = sqlx::query_as(
                    "select current_setting('extra_float_digits'), current_setting('application_name'), current_setting('search_path')",
                )
                .persistent(false)
                .fetch_one(&mut c)
                .await;
                println!("P {label}: connect ok; server sees (extra_float_digits, application_name, search_path) = {r:?}");
            }
            Err(e) => println!("P {label}: connect FAIL {e}"),
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let v = args.get(1).map(String::as_str).unwrap_or("all");
    let url = args
        .get(2)
        .cloned()
        .unwrap_or("postgres://postgres@127.0.0.1:6432/test".into());
    let direct = "postgres://postgres@127.0.0.1:5432/test";
    let per = std::env::var("PER_TASK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2500);
    match v {
        "a" => {
            load("a default", &url, false, "plain", per).await;
        }
        "b" => {
            load("b cache0", &url, true, "plain", per).await;
        }
        "c" => {
            load("c persistent(false)", &url, false, "np", per).await;
        }
        "d" => {
            load("d persistent(false) in tx", &url, false, "tx", per).await;
        }
        "dp" => {
            load("d' default persistent in tx", &url, false, "txp", per).await;
        }
        "direct" => {
            load("direct default", direct, false, "plain", per).await;
        }
        "e" => e_test(&url).await,
        "f" => f_test(&url).await,
        "params" => params_test(&url).await,
        "tput" => {
            // interleaved rounds: c, d, direct
            let mut sums = [0.0f64; 3];
            for round in 0..2 {
                sums[0] += load(&format!("tput{round} c"), &url, false, "np", per).await;
                sums[1] += load(&format!("tput{round} d"), &url, false, "tx", per).await;
                sums[2] += load(&format!("tput{round} direct"), direct, false, "plain", per).await;
            }
            println!(
                "TPUT mean qps: c={:.0} d={:.0} direct={:.0}; ratio c/direct={:.2} d/direct={:.2}",
                sums[0] / 2.0,
                sums[1] / 2.0,
                sums[2] / 2.0,
                sums[0] / sums[2],
                sums[1] / sums[2]
            );
        }
        _ => eprintln!("unknown variant"),
    }
}
