//! `paychan facilitator`: the x402 facilitator routes of docs/004
//! (`POST /verify`, `POST /settle`, `GET /supported`) for one payee and
//! mint, with the same store and settler options as `paychan serve`;
//! `/settle` hands channels to the in-process settler's urgent queue.
//!
//! `/verify` and `/settle` require `Authorization: Bearer <token>` when a
//! token is configured (`facilitator_token`, or `PAYCHAN_FACILITATOR_TOKEN`);
//! without one the facilitator refuses to listen beyond loopback. A payment
//! for less than the cheapest route (or `facilitator_min_price`) is refused.
//!
//! With `[exact] enabled = true`, it also verifies and settles x402 `exact`
//! payments (the `--keypair` signs as fee payer and pays each transaction's
//! fee; `/settle` answers once the transaction is confirmed) and lists the
//! `exact` kind in `/supported`.
use clap::Args;
use paychan_x402::server::facilitator::{self, FacilitatorConfig};

use super::{
    Context,
    server::{
        BackendOptions, DEFAULT_FACILITATOR_LISTEN, PricedRoute, ServerArgs, bind, prepare_server,
        start_backend,
    },
};
use crate::{error::CliError, output::Report};

/// The environment variable holding the facilitator's bearer token.
pub const TOKEN_ENV: &str = "PAYCHAN_FACILITATOR_TOKEN";

/// Arguments of `paychan facilitator`.
#[derive(Debug, Args)]
pub struct FacilitatorArgs {
    /// Server options (each overrides the config file's key; routes are ignored).
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs `paychan facilitator` until Ctrl-C / SIGTERM.
pub async fn run(ctx: &Context, args: &FacilitatorArgs) -> Result<Report, CliError> {
    let (keypair, chain, setup) =
        prepare_server(ctx, &args.server, DEFAULT_FACILITATOR_LISTEN).await?;
    let token = setup
        .file
        .facilitator_token
        .clone()
        .or_else(|| std::env::var(TOKEN_ENV).ok())
        .filter(|t| !t.is_empty());
    let min_price = min_price(&setup)?;
    let (listener, addr) = bind(&setup.listen).await?;
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(CliError::Usage(format!(
            "{addr} is reachable beyond this host: set facilitator_token in the server config \
             (or {TOKEN_ENV}) so /verify and /settle require it"
        )));
    }
    let backend = start_backend(
        &chain,
        &setup,
        BackendOptions::for_server(ctx, keypair.as_ref(), &args.server, min_price, min_price),
    )
    .await?;
    let config = FacilitatorConfig {
        token,
        ..FacilitatorConfig::new(setup.network.clone(), backend.extra.clone(), min_price)
    };
    let (backend, exact) = backend
        .with_exact(
            setup.file.exact.enabled(),
            &chain,
            &setup,
            keypair.as_ref(),
            "[exact] needs the fee payer's keypair (--keypair): it signs and pays for \
             every exact transaction",
        )
        .await?;
    let exact_note = exact.as_ref().map_or(String::new(), |s| {
        format!(
            ", exact (fee payer {}, at most {} lamports a settlement)",
            s.fee_payer(),
            s.max_fee()
        )
    });
    let app = match backend.settle_handle() {
        Some(queue) => {
            facilitator::router_with_exact(backend.verifier.clone(), config, queue, exact)
        }
        None => facilitator::router_with_exact(backend.verifier.clone(), config, (), exact),
    }
    .route("/health", axum::routing::get(|| async { "ok" }));
    backend.announce("facilitator", addr, &setup, &exact_note);
    backend.serve(listener, addr, app, &setup).await?;
    Ok(Report {
        human: format!("paychan facilitator stopped (was on http://{addr})\n"),
        json: setup.stopped_json(addr),
    })
}

/// The least a payment may pay: `facilitator_min_price`, else the cheapest
/// priced route; one of them must be configured.
fn min_price(setup: &super::server::ServerSetup) -> Result<u64, CliError> {
    let decimals = setup.mint_info.decimals;
    if let Some(price) = &setup.file.facilitator_min_price {
        let units =
            crate::amount::parse_amount(price, decimals).map_err(|source| CliError::Amount {
                input: price.clone(),
                source,
            })?;
        if units == 0 {
            return Err(CliError::Usage(
                "facilitator_min_price must be above 0".into(),
            ));
        }
        return Ok(units);
    }
    let mut cheapest: Option<u64> = None;
    for route in &setup.file.routes {
        let price = PricedRoute::from_config(route, decimals)?.price;
        if price > 0 {
            cheapest = Some(cheapest.map_or(price, |c| c.min(price)));
        }
    }
    cheapest.ok_or_else(|| {
        CliError::Usage(
            "no price: set facilitator_min_price or priced [[routes]] in the server config \
             (a facilitator refuses payments below it)"
                .into(),
        )
    })
}
