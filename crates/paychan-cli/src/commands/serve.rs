//! `paychan serve`: a paywalled example API from a config file. Each route
//! answers GET with a static body; priced routes answer 402 with a
//! `paychan` offer until paid with a voucher (docs/004). Vouchers are
//! checked against channel snapshots read over RPC and stored in redb or
//! Redis; the settler runs in the same process unless `--no-settler`.
//!
//! Routes with `exact` (their own key, else `[exact] enabled`) also offer
//! the x402 `exact` scheme, settled here with the `--keypair` as fee payer
//! (docs/004, "exact"); the keypair is then required even with
//! `--no-settler`.
use clap::Args;
use serde_json::json;

use super::{
    Context,
    server::{
        BackendOptions, DEFAULT_SERVE_LISTEN, PricedRoute, ServerArgs, bind, paywall_router,
        prepare_server, start_backend,
    },
};
use crate::{
    amount::format_ui,
    error::CliError,
    output::{Report, Table},
};

/// Arguments of `paychan serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Server options (each overrides the config file's key).
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs `paychan serve` until Ctrl-C / SIGTERM.
pub async fn run(ctx: &Context, args: &ServeArgs) -> Result<Report, CliError> {
    let (keypair, chain, setup) = prepare_server(ctx, &args.server, DEFAULT_SERVE_LISTEN).await?;
    if setup.file.routes.is_empty() {
        return Err(CliError::Usage(
            "no routes: pass --routes FILE or add [[serve.routes]] to the config (see serve.example.toml)"
                .into(),
        ));
    }
    if setup.file.routes.len() > super::server::MAX_ROUTES {
        return Err(CliError::Usage(format!(
            "more than {} routes",
            super::server::MAX_ROUTES
        )));
    }
    let exact_default = setup.file.exact.enabled();
    let routes = setup
        .file
        .routes
        .iter()
        .map(|r| {
            PricedRoute::from_config(r, setup.mint_info.decimals).map(|p| PricedRoute {
                exact: r.exact.unwrap_or(exact_default) && p.price > 0,
                ..p
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exact_routes = routes.iter().filter(|r| r.exact).count();
    let prices = routes.iter().map(|r| r.price).filter(|p| *p > 0);
    let (min_price, max_price) = (prices.clone().min().unwrap_or(1), prices.max().unwrap_or(1));
    let backend = start_backend(
        &chain,
        &setup,
        BackendOptions::for_server(ctx, keypair.as_ref(), &args.server, min_price, max_price),
    )
    .await?;
    let mut paywall = backend.paywall(&setup);
    let (backend, exact) = backend
        .with_exact(
            exact_routes > 0,
            &chain,
            &setup,
            keypair.as_ref(),
            "exact routes need the fee payer's keypair (--keypair): it signs and pays \
             for every exact transaction",
        )
        .await?;
    let mut exact_note = String::new();
    if let Some(settler) = exact {
        exact_note = format!(
            ", exact on {exact_routes} (fee payer {}, at most {} lamports a request)",
            settler.fee_payer(),
            settler.max_fee()
        );
        paywall = paywall.with_exact(settler);
    }
    let app = paywall_router(&paywall, &routes);
    let (listener, addr) = bind(&setup.listen).await?;
    backend.announce(
        "serve",
        addr,
        &setup,
        &format!(", {} routes{exact_note}", routes.len()),
    );
    tracing::info!(%addr, network = %setup.network, "serving");
    backend.serve(listener, addr, app, &setup).await?;

    let decimals = setup.mint_info.decimals;
    let mut table = Table::with_header(["route", "price", "description"]);
    for r in &routes {
        table.row([
            r.path.clone(),
            if r.price == 0 {
                "free".to_string()
            } else {
                format_ui(r.price, decimals)
            },
            r.description.clone().unwrap_or_default(),
        ]);
    }
    Ok(Report {
        human: format!("paychan serve stopped (was on http://{addr})\n{table}"),
        json: {
            let mut json = setup.stopped_json(addr);
            json["routes"] = routes
                .iter()
                .map(|r| {
                    json!({
                        "path": r.path,
                        "price": r.price.to_string(),
                        "exact": r.exact,
                    })
                })
                .collect();
            json
        },
    })
}
