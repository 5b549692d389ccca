//! Workload 26: opening a new connection with TLS vs without, to the same server in the same
//! run: what a pool pays for each connection it opens, and what a command-line run pays once.
//! The target: TLS costs its handshake's round trips and CPU, not Nagle stalls (≤ 1.5× a plain
//! connection). Two rows: PostgreSQL (`sslmode=require` vs `disable`, the workload's server)
//! and MySQL / MariaDB (`ssl-mode=required` vs `disabled`, on `tenancy_testdb::tls_mysql_url()`:
//! `MYSQL_TLS_URL`, else a private server with a certificate of its own, since the machine's
//! MariaDB may have TLS off).
//!
//! Each round opens a batch of connections per variant, in rotating order, the plain variant
//! twice (the A/A control); only the connect is timed, each connection closed after.

use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnection, PgSslMode};
use sqlx::Connection;

use crate::common::*;
use crate::method::{cpu_time, Rounds};
use crate::report::Target;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    /// The plain connection again: the A/A control.
    PlainAgain,
    Tls,
}

const VARIANTS: [Variant; 3] = [Variant::Plain, Variant::PlainAgain, Variant::Tls];

pub async fn run(ctx: &mut Ctx) -> BoxResult<()> {
    let (rounds, per_round) = if ctx.quick { (1, 2) } else { (15, 20) };
    println!(
        "  {rounds} rounds; each round every variant opens {per_round} connections one after \
         another (order rotating); only the connect is timed"
    );
    postgres(ctx, rounds, per_round).await?;
    mysql(ctx, rounds, per_round).await?;
    ctx.out.note(format!(
        "{rounds} rounds of {per_round} connects per variant; ratios are medians of the \
         per-round ratios"
    ));
    Ok(())
}

/// The PostgreSQL row, on the workload's server.
async fn postgres(ctx: &mut Ctx, rounds: usize, per_round: usize) -> BoxResult<()> {
    let plain = ctx.options.clone().ssl_mode(PgSslMode::Disable);
    let tls = ctx.options.clone().ssl_mode(PgSslMode::Require);
    // The TLS variant must really be encrypted; a server without TLS has no row here.
    let mut conn = match PgConnection::connect_with(&tls).await {
        Ok(conn) => conn,
        Err(e) => {
            println!("  skipped: no TLS connection to this server ({e})");
            ctx.out
                .note(format!("skipped: no TLS connection to this server ({e})"));
            return Ok(());
        }
    };
    let on: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    if !on {
        return Err("the server did not encrypt a sslmode=require connection".into());
    }
    let (times, cpu) = time_variants::<PgConnection>(&plain, &tls, rounds, per_round).await?;
    ctx.out.note(cpu.note("PostgreSQL"));
    let at = |v: Variant| VARIANTS.iter().position(|x| *x == v).unwrap();
    ctx.out.row(times.row(
        format!("26 connect {}: TLS (sslmode=require)", rounds * per_round),
        at(Variant::Tls),
        at(Variant::Plain),
        Some(at(Variant::PlainAgain)),
        "the same connects without TLS (sslmode=disable)",
        Target::AtMost(1.5),
    ));
    Ok(())
}

/// The MySQL / MariaDB row, on `tls_mysql_url()`'s server.
async fn mysql(ctx: &mut Ctx, rounds: usize, per_round: usize) -> BoxResult<()> {
    let url = match tenancy_testdb::tls_mysql_url() {
        Ok(url) => url,
        Err(e) => {
            println!("  MySQL skipped: no MySQL / MariaDB server with TLS ({e})");
            ctx.out.note(format!(
                "MySQL skipped: no MySQL / MariaDB server with TLS ({e})"
            ));
            return Ok(());
        }
    };
    let tls = url
        .parse::<MySqlConnectOptions>()?
        .ssl_mode(MySqlSslMode::Required);
    let plain = tls.clone().ssl_mode(MySqlSslMode::Disabled);
    // Each variant is what it says: the TLS one encrypted, the plain one not.
    for (options, encrypted) in [(&tls, true), (&plain, false)] {
        let mut conn = MySqlConnection::connect_with(options).await?;
        let (_, cipher): (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        if cipher.is_empty() == encrypted {
            return Err(format!(
                "a MySQL connection with ssl-mode={:?} has Ssl_cipher {cipher:?}",
                options.get_ssl_mode()
            )
            .into());
        }
    }
    let (version,): (String,) = {
        let mut conn = MySqlConnection::connect_with(&plain).await?;
        let v = sqlx::query_as("SELECT VERSION()")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        v
    };
    let (times, cpu) = time_variants::<MySqlConnection>(&plain, &tls, rounds, per_round).await?;
    ctx.out.note(cpu.note("MySQL"));
    let at = |v: Variant| VARIANTS.iter().position(|x| *x == v).unwrap();
    ctx.out.row(times.row(
        format!(
            "26 connect {} on MySQL ({version}): TLS (ssl-mode=required)",
            rounds * per_round
        ),
        at(Variant::Tls),
        at(Variant::Plain),
        Some(at(Variant::PlainAgain)),
        "the same connects without TLS (ssl-mode=disabled)",
        Target::AtMost(1.5),
    ));
    Ok(())
}

/// The client's CPU time (this process, all threads) spent in the connects of each variant.
#[derive(Default)]
struct ClientCpu {
    /// Per variant: CPU time and connects.
    spent: [(Duration, usize); VARIANTS.len()],
}

impl ClientCpu {
    fn per_connect_ms(&self, v: Variant) -> f64 {
        let (cpu, n) = self.spent[VARIANTS.iter().position(|x| *x == v).unwrap()];
        cpu.as_secs_f64() * 1e3 / n.max(1) as f64
    }

    /// What the note says: the client's share of a connect, with and without TLS.
    fn note(&self, server: &str) -> String {
        format!(
            "{server}: client CPU per connect (this process, all threads): TLS {:.3} ms, \
             without TLS {:.3} ms; the rest of a connect's time is the server's and the network's",
            self.per_connect_ms(Variant::Tls),
            self.per_connect_ms(Variant::Plain),
        )
    }
}

/// `rounds` rounds of `per_round` connects per variant, in rotating order.
async fn time_variants<C: Connection>(
    plain: &C::Options,
    tls: &C::Options,
    rounds: usize,
    per_round: usize,
) -> BoxResult<(Rounds, ClientCpu)> {
    let mut times = Rounds::new(VARIANTS.len());
    let mut cpu = ClientCpu::default();
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            let options = match VARIANTS[vi] {
                Variant::Plain | Variant::PlainAgain => plain,
                Variant::Tls => tls,
            };
            let (wall, spent) = connects::<C>(options, per_round).await?;
            times.push(vi, wall.as_secs_f64());
            cpu.spent[vi].0 += spent;
            cpu.spent[vi].1 += per_round;
        }
    }
    Ok((times, cpu))
}

/// The time `n` connections with `options` take to open, one after another, and the CPU time
/// the process spent meanwhile.
async fn connects<C: Connection>(
    options: &C::Options,
    n: usize,
) -> BoxResult<(Duration, Duration)> {
    let mut spent = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    for _ in 0..n {
        let (start, cpu_start) = (Instant::now(), cpu_time());
        let conn = C::connect_with(options).await?;
        spent += start.elapsed();
        cpu += cpu_time().saturating_sub(cpu_start);
        conn.close().await?;
    }
    Ok((spent, cpu))
}
