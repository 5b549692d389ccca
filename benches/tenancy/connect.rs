//! Workload 26: opening a new connection with TLS (`sslmode=require`) vs without
//! (`sslmode=disable`), to the same server in the same run: what a pool pays for each
//! connection it opens, and what a command-line run pays once. The target: TLS costs its
//! handshake's round trips and CPU, not Nagle stalls (≤ 1.5× a plain connection).
//!
//! Each round opens a batch of connections per variant, in rotating order, the plain variant
//! twice (the A/A control); only the connect is timed, each connection closed after.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::Connection;

use crate::common::*;
use crate::method::Rounds;
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
    println!(
        "  {rounds} rounds; each round every variant opens {per_round} connections one after \
         another (order rotating); only the connect is timed"
    );
    let mut times = Rounds::new(VARIANTS.len());
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let vi = (k + round) % VARIANTS.len();
            let options = match VARIANTS[vi] {
                Variant::Plain | Variant::PlainAgain => &plain,
                Variant::Tls => &tls,
            };
            times.push(vi, connects(options, per_round).await?.as_secs_f64());
        }
    }
    let at = |v: Variant| VARIANTS.iter().position(|x| *x == v).unwrap();
    ctx.out.row(times.row(
        format!("26 connect {}: TLS (sslmode=require)", rounds * per_round),
        at(Variant::Tls),
        at(Variant::Plain),
        Some(at(Variant::PlainAgain)),
        "the same connects without TLS (sslmode=disable)",
        Target::AtMost(1.5),
    ));
    ctx.out.note(format!(
        "{rounds} rounds of {per_round} connects per variant; ratios are medians of the \
         per-round ratios"
    ));
    Ok(())
}

/// The time `n` connections with `options` take to open, one after another.
async fn connects(options: &PgConnectOptions, n: usize) -> BoxResult<Duration> {
    let mut spent = Duration::ZERO;
    for _ in 0..n {
        let start = Instant::now();
        let conn = PgConnection::connect_with(options).await?;
        spent += start.elapsed();
        conn.close().await?;
    }
    Ok(spent)
}
