//! The load side: keep-alive HTTP/1.1 connections over loopback, closed loop
//! (as fast as the server answers) or open loop (a fixed schedule; latency
//! is measured from the scheduled send time, so a slow server cannot hide
//! its queueing).
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// One measured phase.
#[derive(Clone, Debug)]
pub struct Phase {
    /// `/free` or `/paid`.
    pub paid: bool,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// How long to measure.
    pub duration: Duration,
    /// Open loop at this total rate (requests per second); closed loop when `None`.
    pub rate: Option<f64>,
}

/// What a phase measured.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseResult {
    /// Requests answered as expected (200).
    pub requests: u64,
    /// Requests answered otherwise, or failed.
    pub errors: u64,
    /// Requests not sent because a connection ran out of pre-signed vouchers.
    pub exhausted_connections: u64,
    /// Measured wall time.
    pub seconds: f64,
    /// `requests / seconds`.
    pub requests_per_second: f64,
    /// Open-loop target rate, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Latency percentiles, microseconds.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest.
    pub max_us: u64,
    /// First unexpected status seen, for diagnosis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

struct ConnOutcome {
    latencies_us: Vec<u32>,
    errors: u64,
    exhausted: bool,
    first_error: Option<String>,
}

/// Runs a phase. `vouchers[c]` are connection `c`'s payment headers, used in
/// order from `cursors[c]` (which advances, so later phases continue the
/// channel's cumulative sequence).
pub async fn run(
    addr: SocketAddr,
    phase: &Phase,
    vouchers: &std::sync::Arc<Vec<Vec<String>>>,
    cursors: &mut [usize],
) -> Result<PhaseResult, String> {
    let start = Instant::now() + Duration::from_millis(20);
    let deadline = start + phase.duration;
    let mut tasks = Vec::with_capacity(phase.connections);
    let mut tickets = Vec::with_capacity(phase.connections);
    for (c, cursor) in cursors.iter().enumerate().take(phase.connections) {
        let vouchers = vouchers.clone();
        let first = *cursor;
        let phase = phase.clone();
        let schedule = match phase.rate {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                tickets.push(tx);
                Some(rx)
            }
            None => None,
        };
        tasks.push(tokio::spawn(async move {
            connection(
                addr,
                &phase,
                c,
                &vouchers,
                first,
                schedule,
                (start, deadline),
            )
            .await
        }));
    }
    // Open loop: a pacer thread releases requests at the target rate, round
    // robin over the connections, with nanosleep precision (tokio's timer
    // has 1 ms granularity and would send in bursts). A request's latency
    // counts from its release, so while a connection is still busy its
    // released requests wait — and that wait is charged to the server
    // (no coordinated omission).
    let pacer = phase.rate.map(|rate| {
        std::thread::spawn(move || {
            let period = Duration::from_secs_f64(1.0 / rate);
            let mut n: u32 = 0;
            loop {
                let at = start + period * n;
                if at >= deadline {
                    break;
                }
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                let Some(tx) = tickets.get(n as usize % tickets.len().max(1)) else {
                    break;
                };
                if tx.send(Instant::now()).is_err() {
                    break;
                }
                n = n.wrapping_add(1);
            }
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut exhausted = 0;
    let mut first_error = None;
    for (c, task) in tasks.into_iter().enumerate() {
        let (outcome, used) = task.await.map_err(|e| e.to_string())??;
        cursors[c] += used;
        latencies.extend(outcome.latencies_us);
        errors += outcome.errors;
        exhausted += u64::from(outcome.exhausted);
        if first_error.is_none() {
            first_error = outcome.first_error;
        }
    }
    if let Some(p) = pacer {
        p.join()
            .map_err(|_| "the pacer thread panicked".to_string())?;
    }
    let seconds = phase.duration.as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        let idx = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        u64::from(latencies[idx])
    };
    Ok(PhaseResult {
        requests: latencies.len() as u64,
        errors,
        exhausted_connections: exhausted,
        seconds,
        requests_per_second: latencies.len() as f64 / seconds,
        target_rate: phase.rate,
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: latencies.last().map_or(0, |v| u64::from(*v)),
        first_error,
    })
}

async fn connection(
    addr: SocketAddr,
    phase: &Phase,
    c: usize,
    vouchers: &[Vec<String>],
    first: usize,
    mut schedule: Option<tokio::sync::mpsc::UnboundedReceiver<Instant>>,
    (start, deadline): (Instant, Instant),
) -> Result<(ConnOutcome, usize), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mine = vouchers.get(c).map_or(&[][..], Vec::as_slice);
    let mut out = ConnOutcome {
        latencies_us: Vec::with_capacity(64 * 1024),
        errors: 0,
        exhausted: false,
        first_error: None,
    };
    let mut used = 0usize;
    tokio::time::sleep_until(start.into()).await;
    loop {
        let released = match schedule.as_mut() {
            Some(rx) => match rx.recv().await {
                Some(at) => at,
                None => break,
            },
            None => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                now
            }
        };
        let mut req = Request::builder()
            .uri(if phase.paid { "/paid" } else { "/free" })
            .header(hyper::header::HOST, "127.0.0.1");
        if phase.paid {
            let Some(header) = mine.get(first + used) else {
                out.exhausted = true;
                break;
            };
            used += 1;
            req = req.header("PAYMENT-SIGNATURE", header.as_str());
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let has_receipt = response.headers().contains_key("PAYMENT-RESPONSE");
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        let latency = released.elapsed();
        if status == StatusCode::OK && (has_receipt || !phase.paid) {
            out.latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        } else {
            out.errors += 1;
            if out.first_error.is_none() {
                out.first_error = Some(format!("{status} (receipt: {has_receipt})"));
            }
        }
    }
    Ok((out, used))
}
