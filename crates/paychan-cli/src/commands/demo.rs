//! `paychan demo`: the whole product on an embedded local chain, in one
//! process and in well under a minute:
//!
//! 1. an in-process Surfpool chain (`paychan-localnet`: real JSON-RPC and
//!    websocket on 127.0.0.1) running the real `paychan.so`, with a 6-decimal
//!    USDC-like mint and funded payer and payee keys;
//! 2. a paywalled HTTP API on 127.0.0.1 (`paychan_x402::server::Paywall`,
//!    channel snapshots over RPC + websocket, a redb voucher store in `sync`
//!    mode: every voucher is durable before its 200);
//! 3. an agent (`paychan-client`) that opens channels on its first 402 and
//!    makes N paid calls over `--concurrency` channels;
//! 4. the settler (`paychan-settler`) settling accepted vouchers in batches
//!    while the agent works;
//! 5. the agent asks for its money back (`request_close`); the settler closes
//!    each channel cooperatively with its final voucher, refunding the rest
//!    at once;
//! 6. a summary: requests, value paid, server-side check latency, every
//!    on-chain transaction and its fee, lamports per paid request next to
//!    one transfer transaction per request, and the conservation check
//!    `payee + refund = deposit`.
//!
//! With `--keep-serving` it then serves outside agents for real: the chain
//! switches to clock-driven blocks with its clock running `--time-scale`
//! times faster than the wall clock (so grace periods end), the settler
//! keeps running (closing channels whose payer requested a close, when it
//! holds a voucher for them and the payer's associated token account
//! exists), and a funded keypair file is written. The serving line and
//! what to do with it go to stdout (with `--json`, as a second JSON line,
//! `{"serving": {...}}`).
//!
//! The embedded chain (Surfpool, about 300 crates) is behind the cargo
//! feature `demo` (`scripts/demo.sh` turns it on): the production `paychan`
//! binary does not link it, and says so when asked for the demo.
use std::path::PathBuf;

use clap::Args;

use super::Context;
use crate::{error::CliError, output::Report};

/// Arguments of `paychan demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Paid requests the agent makes.
    #[arg(long, short = 'n', default_value_t = 1_000)]
    pub requests: u64,
    /// Price of one request, in base units of the 6-decimal mint (1000 = 0.001 USDC).
    #[arg(long, default_value_t = 1_000)]
    pub price: u64,
    /// Requests in flight at once; the agent opens one channel per lane.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub concurrency: u16,
    /// The program binary (default: `$PAYCHAN_SO`, else target/deploy/paychan.so of this checkout).
    #[arg(long, env = "PAYCHAN_SO")]
    pub program: Option<PathBuf>,
    /// Voucher store durability: `sync` (every voucher fsync'd before its
    /// 200) or `batched` (group commit every 5 ms; an acknowledged voucher
    /// can be lost for at most that long on a crash).
    #[arg(long, default_value = "sync", value_parser = ["sync", "batched"])]
    pub durability: String,
    /// After the summary, keep serving outside clients until Ctrl-C or
    /// SIGTERM: the paywalled API, the chain's RPC (now producing blocks on
    /// a clock, so time passes), the settler (which closes channels whose
    /// payer asks for a close), and a funded keypair file (the faucet).
    #[arg(long)]
    pub keep_serving: bool,
    /// With --keep-serving: how many times faster than the wall clock the
    /// chain's clock runs (60: the API's 900 s grace period ends 15 s after
    /// a close request).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub time_scale: u32,
    /// With --keep-serving: where to write the faucet keypair (10 SOL and
    /// 100 USDC of the demo's mint in its associated token account)
    /// [default: a file in the demo's temporary directory, removed on exit]
    #[arg(long, value_name = "FILE")]
    pub faucet_keypair: Option<PathBuf>,
    /// Port of the paywalled API on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Runs `paychan demo`.
#[cfg(feature = "demo")]
pub async fn run(ctx: &Context, args: &DemoArgs) -> Result<Report, CliError> {
    super::demo_chain::run(ctx, args).await
}

/// Without the embedded chain: a usage error that says how to get it.
#[cfg(not(feature = "demo"))]
pub async fn run(_ctx: &Context, _args: &DemoArgs) -> Result<Report, CliError> {
    Err(CliError::Usage(
        "this paychan was built without the embedded chain: build it with \
         `cargo build -p paychan-cli --features demo`, or run scripts/demo.sh"
            .into(),
    ))
}
