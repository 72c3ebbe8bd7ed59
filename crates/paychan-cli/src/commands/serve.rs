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
        resolve_server, shutdown_signal, start_backend, start_exact,
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
    // Only the settler signs. With --no-settler the keypair is optional: it
    // only names the payee when --payee and the config do not.
    let keypair = if args.server.no_settler {
        ctx.keypair().ok()
    } else {
        Some(ctx.keypair()?)
    };
    let chain = args.server.chain(ctx)?;
    let setup = resolve_server(
        ctx,
        &chain,
        &args.server,
        DEFAULT_SERVE_LISTEN,
        keypair.as_ref(),
    )
    .await?;
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
    let mut exact_note = String::new();
    if exact_routes > 0 {
        let Some(fee_payer) = keypair.as_ref() else {
            backend.shutdown().await;
            return Err(CliError::Usage(
                "exact routes need the fee payer's keypair (--keypair): it signs and pays \
                 for every exact transaction"
                    .into(),
            ));
        };
        let settler = match start_exact(&chain, &setup, fee_payer).await {
            Ok(s) => s,
            Err(e) => {
                backend.shutdown().await;
                return Err(e);
            }
        };
        exact_note = format!(
            ", exact on {exact_routes} (fee payer {}, at most {} lamports a request)",
            settler.fee_payer(),
            settler.max_fee()
        );
        paywall = paywall.with_exact(settler);
    }
    let app = paywall_router(&paywall, &routes);
    let (listener, addr) = bind(&setup.listen).await?;
    eprintln!(
        "paychan serve: listening on http://{addr} (network {}, payee {}, mint {}, {} routes{exact_note}, settler {})",
        setup.network,
        setup.payee,
        setup.mint,
        routes.len(),
        if backend.settler.is_some() {
            "on"
        } else {
            "off"
        }
    );
    if let Some(m) = backend.metrics_addr {
        eprintln!("paychan serve: metrics on http://{m}/metrics");
    }
    tracing::info!(%addr, network = %setup.network, "serving");
    let served =
        paychan_x402::server::serve(listener, app, setup.file.limits.http(), shutdown_signal())
            .await;
    backend.shutdown().await;
    served.map_err(|source| CliError::Io {
        what: format!("serving on {addr}"),
        source,
    })?;

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
        json: json!({
            "stopped": true,
            "listen": addr.to_string(),
            "network": setup.network,
            "payee": setup.payee.to_string(),
            "mint": setup.mint.to_string(),
            "routes": routes.iter().map(|r| json!({
                "path": r.path,
                "price": r.price.to_string(),
                "exact": r.exact,
            })).collect::<Vec<_>>(),
        }),
    })
}
