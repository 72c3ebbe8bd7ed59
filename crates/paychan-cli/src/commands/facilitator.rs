//! `paychan facilitator`: the x402 facilitator routes of docs/004
//! (`POST /verify`, `POST /settle`, `GET /supported`) for one payee and
//! mint, with the same store and settler options as `paychan serve`;
//! `/settle` hands channels to the in-process settler's urgent queue.
use clap::Args;
use paychan_x402::server::facilitator;
use serde_json::json;

use super::{
    Context,
    server_common::{
        DEFAULT_FACILITATOR_LISTEN, ServerArgs, bind, resolve_server, shutdown_signal,
        start_backend,
    },
};
use crate::{error::CliError, output::Report};

/// Arguments of `paychan facilitator`.
#[derive(Debug, Args)]
pub struct FacilitatorArgs {
    /// Server options (each overrides the config file's key; routes are ignored).
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs `paychan facilitator` until Ctrl-C / SIGTERM.
pub async fn run(ctx: &Context, args: &FacilitatorArgs) -> Result<Report, CliError> {
    let keypair = ctx.keypair()?;
    let chain = args.server.chain(ctx)?;
    let setup = resolve_server(
        ctx,
        &chain,
        &args.server,
        DEFAULT_FACILITATOR_LISTEN,
        &keypair,
    )
    .await?;
    let backend = start_backend(ctx, &chain, &setup, &keypair, &args.server, 1, 1).await?;
    let app = match backend.settle_handle() {
        Some(queue) => facilitator::router(
            backend.verifier.clone(),
            setup.network.clone(),
            backend.extra.clone(),
            queue,
        ),
        None => facilitator::router(
            backend.verifier.clone(),
            setup.network.clone(),
            backend.extra.clone(),
            (),
        ),
    }
    .route("/health", axum::routing::get(|| async { "ok" }));
    let (listener, addr) = bind(&setup.listen).await?;
    eprintln!(
        "paychan facilitator: listening on http://{addr} (network {}, payee {}, mint {}, settler {})",
        setup.network,
        setup.payee,
        setup.mint,
        if backend.settler.is_some() {
            "on"
        } else {
            "off"
        }
    );
    if let Some(m) = backend.metrics_addr {
        eprintln!("paychan facilitator: metrics on http://{m}/metrics");
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    backend.shutdown().await;
    served.map_err(|source| CliError::Io {
        what: format!("serving on {addr}"),
        source,
    })?;
    Ok(Report {
        human: format!("paychan facilitator stopped (was on http://{addr})\n"),
        json: json!({
            "stopped": true,
            "listen": addr.to_string(),
            "network": setup.network,
            "payee": setup.payee.to_string(),
            "mint": setup.mint.to_string(),
        }),
    })
}
