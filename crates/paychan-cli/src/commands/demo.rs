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
    /// After the summary, keep the paywalled API and the chain's RPC running
    /// for outside clients until interrupted (Ctrl-C).
    #[arg(long)]
    pub keep_serving: bool,
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
