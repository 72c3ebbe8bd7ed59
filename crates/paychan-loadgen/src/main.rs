//! # paychan-loadgen
//!
//! HTTP load benchmark of the paychan paywall on loopback.
//!
//! `paychan-loadgen bench` starts `paychan-loadgen serve` as a **separate
//! process** (an axum server with an unpaid `/free` route and the same
//! handler behind the paywall at `/paid`, verifying real signed vouchers
//! against a redb store), then drives it from this process over keep-alive
//! HTTP/1.1 connections and writes `target/bench/http.json`:
//!
//! 1. `/free` closed loop: the unpaid maximum;
//! 2. `/paid` closed loop: the paid maximum (every request carries a new
//!    cumulative voucher, pre-signed before measuring);
//! 3. `/paid` open loop at half the paid maximum: p99 under moderate load,
//!    measured from each request's scheduled send time.
//!
//! Each round runs the three phases; `--repeat N` rounds (default 3) and the
//! headline figures are their medians: a shared 2-core VM is noisy.
//!
//! Run with `scripts/bench-http.sh` (release build).
mod load;
mod server;
mod workload;

use std::{net::SocketAddr, path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use clap::{Parser, Subcommand};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
#[command(about = "HTTP load benchmark of the paychan paywall")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `/free` and `/paid` on 127.0.0.1 (prints `READY <port>`).
    Serve {
        /// Port (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Channels known to the server.
        #[arg(long, default_value_t = 64)]
        channels: usize,
        /// Voucher store: `redb-batched`, `redb-sync` or `memory`.
        #[arg(long, default_value = "redb-batched")]
        store: String,
    },
    /// Start a server process, measure, print and write JSON.
    Bench {
        /// Concurrent connections (one channel each on the paid route).
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Seconds per measured phase.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Voucher store of the server.
        #[arg(long, default_value = "redb-batched")]
        store: String,
        /// Rounds of the three phases; the headline figures are their medians.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Where to write the JSON report.
        #[arg(long, default_value = "target/bench/http.json")]
        out: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            port,
            channels,
            store,
        } => server::main(port, channels, &store),
        Command::Bench {
            connections,
            seconds,
            store,
            repeat,
            out,
        } => bench(connections, seconds, &store, repeat.max(1), &out),
    };
    if let Err(e) = result {
        eprintln!("paychan-loadgen: {e}");
        std::process::exit(1);
    }
}

fn bench(
    connections: usize,
    seconds: u64,
    store: &str,
    repeat: usize,
    out: &PathBuf,
) -> Result<(), String> {
    // One load thread (plus the open-loop pacer): the server keeps the rest
    // of the 2 cores, and fewer runnable threads means less preemption noise.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new(exe)
            .args([
                "serve",
                "--channels",
                &connections.to_string(),
                "--store",
                store,
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the server process: {e}"))?;
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port: u16 = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| "server did not start in 30 s")?
            .map_err(|e| e.to_string())?
            .and_then(|l| l.strip_prefix("READY ").and_then(|p| p.trim().parse().ok()))
            .ok_or("server did not print READY <port>")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));

        // Enough vouchers for the paid phases of every round at up to 16k
        // req/s (signing is not measured).
        let per_conn = (16_000 * (seconds as usize * 2 + 2) * repeat) / connections.max(1);
        eprintln!("[bench] pre-signing {} vouchers", per_conn * connections);
        let vouchers = Arc::new(presign(connections, per_conn)?);
        let mut cursors = vec![0usize; connections];
        let d = Duration::from_secs(seconds);
        let warm = Duration::from_secs(1);

        let phase = |paid, duration, rate| load::Phase {
            paid,
            connections,
            duration,
            rate,
        };
        let mut rounds = Vec::with_capacity(repeat);
        for round in 1..=repeat {
            load::run(addr, &phase(false, warm, None), &vouchers, &mut cursors).await?;
            let unpaid = load::run(addr, &phase(false, d, None), &vouchers, &mut cursors).await?;
            load::run(addr, &phase(true, warm, None), &vouchers, &mut cursors).await?;
            let paid = load::run(addr, &phase(true, d, None), &vouchers, &mut cursors).await?;
            let half = paid.requests_per_second / 2.0;
            let paid_half =
                load::run(addr, &phase(true, d, Some(half)), &vouchers, &mut cursors).await?;
            eprintln!(
                "[bench] round {round}: unpaid {:.0} req/s (p99 {} µs), paid {:.0} req/s (p99 {} µs), paid at {half:.0} req/s: p99 {} µs",
                unpaid.requests_per_second,
                unpaid.p99_us,
                paid.requests_per_second,
                paid.p99_us,
                paid_half.p99_us
            );
            rounds.push(json!({
                "unpaid": unpaid,
                "paid": paid,
                "paid_at_half_max": paid_half,
                "paid_over_unpaid": paid.requests_per_second / unpaid.requests_per_second.max(1e-9),
            }));
        }
        child.kill().await.ok();

        // Headline figures: the median over rounds (a shared 2-core VM is noisy).
        let median = |path: &[&str]| -> f64 {
            let mut v: Vec<f64> = rounds
                .iter()
                .filter_map(|r| {
                    path.iter()
                        .try_fold(r, |node, key| node.get(*key))
                        .and_then(serde_json::Value::as_f64)
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        let unpaid_rps = median(&["unpaid", "requests_per_second"]);
        let paid_rps = median(&["paid", "requests_per_second"]);
        let ratio = median(&["paid_over_unpaid"]);
        let half_p99 = median(&["paid_at_half_max", "p99_us"]);
        let errors: f64 = ["unpaid", "paid", "paid_at_half_max"]
            .iter()
            .map(|k| {
                rounds
                    .iter()
                    .filter_map(|r| r.get(*k)?.get("errors")?.as_f64())
                    .sum::<f64>()
            })
            .sum();
        let report = json!({
            "benchmark": "http",
            "transport": "HTTP/1.1 keep-alive over loopback; load from a separate process (one thread + an open-loop pacer)",
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "connections": connections,
            "seconds_per_phase": seconds,
            "store": store,
            "price": workload::PRICE,
            "median": {
                "unpaid_requests_per_second": unpaid_rps,
                "paid_requests_per_second": paid_rps,
                "paid_over_unpaid": ratio,
                "paid_p99_us_at_half_max": half_p99,
                "unpaid_p99_us": median(&["unpaid", "p99_us"]),
                "paid_p99_us_at_max": median(&["paid", "p99_us"]),
                "paid_p50_us_at_half_max": median(&["paid_at_half_max", "p50_us"]),
            },
            "rounds": rounds,
            "goals": {
                "paid_over_unpaid_min": 0.5,
                "paid_over_unpaid_met": ratio >= 0.5,
                "paid_p99_at_half_max_us_max": 1000,
                "paid_p99_at_half_max_met": half_p99 <= 1000.0,
            },
            "errors": errors,
        });
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(out, format!("{text}\n")).map_err(|e| e.to_string())?;
        if errors > 0.0 {
            return Err(format!("{errors} requests failed; see {}", out.display()));
        }
        Ok(())
    })
}

/// Pre-signs `per_conn` headers for each connection's channel on all cores.
fn presign(connections: usize, per_conn: usize) -> Result<Vec<Vec<String>>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<Vec<String>> = vec![Vec::new(); connections];
    std::thread::scope(|s| {
        let chunks: Vec<_> = out
            .chunks_mut(connections.div_ceil(threads).max(1))
            .enumerate()
            .map(|(t, chunk)| {
                s.spawn(move || -> Result<(), String> {
                    let base = t * connections.div_ceil(threads).max(1);
                    for (j, slot) in chunk.iter_mut().enumerate() {
                        *slot = workload::headers(base + j, per_conn)?;
                    }
                    Ok(())
                })
            })
            .collect();
        chunks.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| "signing thread panicked".to_string())?
        })
    })?;
    Ok(out)
}
