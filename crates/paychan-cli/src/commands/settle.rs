//! `paychan settle`: puts the payee's accepted vouchers on chain
//! (paychan-settler) from a voucher store: once (`--once`, a sweep of
//! everything ahead of the chain, printed as a report) or as a daemon (a
//! due-check every `--interval`, a sweep every `--sweep-interval`,
//! `GET /metrics` on `--metrics-addr`, Ctrl-C / SIGTERM to stop after the
//! run in progress). Channels whose payer requested a close are closed at
//! once with their final voucher unless `--no-close-on-request`.
use std::{sync::Arc, time::Duration};

use clap::Args;
use paychan_sdk::Pubkey;
use paychan_settler::{MintAccounts, RunMode, SweepReport};
use paychan_verifier::store::Durability;
use serde_json::json;
use solana_signer::Signer;

use super::{
    Context,
    server::{
        DEFAULT_METRICS_ADDR, ServeConfig, SettlerOptions, StoreSpec, build_settler,
        ensure_payee_tokens, open_store, serve_metrics, settle_threshold, settler_lease,
        shutdown_signal, spawn_settler, store_spec,
    },
};
use crate::{
    amount::{AmountInput, format_ui},
    cli::parse_pubkey,
    error::CliError,
    output::{Report, Table},
};

/// Arguments of `paychan settle`.
#[derive(Debug, Args)]
pub struct SettleArgs {
    /// Voucher store: redb:<path> or redis://host:port/db [default: the [serve] table's store, else redb:paychan-vouchers.redb]
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
    /// The token mint [default: the [serve] table's mint]
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub mint: Option<Pubkey>,
    /// Settle a channel once this much is unsettled (base units or decimal) [default: 1.0]
    #[arg(long, value_name = "AMOUNT")]
    pub threshold: Option<AmountInput>,
    /// One sweep (everything ahead of the chain), print what it did, exit
    #[arg(long)]
    pub once: bool,
    /// Daemon: seconds between due-checks
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Daemon: seconds between sweeps
    #[arg(long, value_name = "SECS", default_value_t = 3_600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval: u64,
    /// Daemon: serve Prometheus metrics (GET /metrics) on this address
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_METRICS_ADDR)]
    pub metrics_addr: String,
    /// Daemon: do not serve metrics
    #[arg(long, conflicts_with = "metrics_addr")]
    pub no_metrics: bool,
    /// Leave channels whose payer requested a close until their grace period
    /// nears its end (settling them then) instead of closing them at once
    #[arg(long)]
    pub no_close_on_request: bool,
    /// Address lookup table: `off` (legacy transactions, 4 vouchers each),
    /// `create` (a new table on first need, paid by the payee, its address
    /// logged: reuse it next time; 5 vouchers per v0 transaction) or the
    /// address of an existing table
    #[arg(long, value_name = "off|create|PUBKEY", default_value = "off", value_parser = parse_lookup_table)]
    pub lookup_table: paychan_settler::LookupTableMode,
}

fn parse_lookup_table(s: &str) -> Result<paychan_settler::LookupTableMode, String> {
    use paychan_settler::LookupTableMode;
    match s {
        "off" => Ok(LookupTableMode::Off),
        "create" => Ok(LookupTableMode::Create),
        other => parse_pubkey(other).map(LookupTableMode::Use),
    }
}

/// Runs `paychan settle`.
pub async fn run(ctx: &Context, args: &SettleArgs) -> Result<Report, CliError> {
    let keypair = ctx.keypair()?;
    let chain = ctx.chain_for_transactions()?;
    let file = ServeConfig::resolve(ctx, None)?;
    let mint = match args.mint {
        Some(m) => m,
        None => file
            .mint
            .as_deref()
            .map(parse_pubkey)
            .transpose()
            .map_err(|e| CliError::Usage(format!("mint: {e}")))?
            .ok_or_else(|| CliError::Usage("no mint: pass --mint or set mint in [serve]".into()))?,
    };
    let mint_info = chain.mint(&mint).await?;
    let threshold = settle_threshold(args.threshold.as_ref(), &file, &mint_info)?;
    let spec = store_spec(args.store.as_ref(), &file)?;
    ensure_payee_tokens(&chain, &keypair, &mint, &mint_info).await?;
    let store = Arc::new(open_store(&spec, Durability::Sync).map_err(|e| match (&spec, e) {
        (StoreSpec::Redb(_), CliError::Usage(m)) => CliError::Usage(format!(
            "{m} (a redb store is used by one process at a time: `paychan serve` settles in-process)"
        )),
        (_, e) => e,
    })?);
    let options = SettlerOptions {
        threshold,
        interval: Duration::from_secs(args.interval),
        sweep_interval: Duration::from_secs(args.sweep_interval),
        close_on_request: !args.no_close_on_request,
        lookup_table: args.lookup_table,
        sweep_on_start: true,
        confirm_poll: None,
    };
    let lease = settler_lease(&spec, &keypair.pubkey()).await?;
    let settler = Arc::new(
        build_settler(
            chain.url(),
            ctx.settings.commitment.value.config(),
            keypair.insecure_clone(),
            MintAccounts::new(mint, mint_info.token_program, threshold),
            &options,
            store.clone(),
        )?
        .with_lease(lease),
    );
    tracing::info!(payee = %keypair.pubkey(), %mint, ?spec, "settler configured");

    if args.once {
        let spinner = ctx.progress.spinner("settling");
        let report = settler.run_once(RunMode::Sweep).await;
        // Let a running replica take over at once rather than after the TTL.
        settler.release_lease().await;
        spinner.finish_and_clear();
        let report = report.map_err(|e| CliError::Rpc {
            url: chain.url().to_string(),
            reason: e.to_string(),
        })?;
        return Ok(sweep_report(&report, mint_info.decimals));
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = vec![spawn_settler(settler.clone(), stopped.clone())];
    let metrics = if args.no_metrics {
        None
    } else {
        let (addr, task) = serve_metrics(&args.metrics_addr, settler.clone(), stopped).await?;
        tasks.push(task);
        Some(addr)
    };
    eprintln!(
        "paychan settle: running for payee {} (mint {mint}, threshold {}, due-check every {} s, sweep every {} s); Ctrl-C to stop{}",
        keypair.pubkey(),
        format_ui(threshold, mint_info.decimals),
        args.interval,
        args.sweep_interval,
        metrics
            .map(|a| format!("; metrics on http://{a}/metrics"))
            .unwrap_or_default()
    );
    shutdown_signal().await;
    eprintln!("paychan settle: stopping after the run in progress");
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    if let super::server::AnyStore::Redb(s) = &*store {
        s.close();
    }
    Ok(Report {
        human: "paychan settle stopped\n".into(),
        json: json!({ "stopped": true }),
    })
}

/// A sweep's report: a table of transactions for people, every detail in JSON.
pub fn sweep_report(report: &SweepReport, decimals: u8) -> Report {
    let ui = |v: u64| format_ui(v, decimals);
    if report.standby {
        return Report {
            human:
                "another settler of this payee holds the lease (a running replica): nothing done\n"
                    .into(),
            json: json!({ "standby": true }),
        };
    }
    let mut table =
        Table::with_header(["kind", "signature", "channels", "value", "fee (lamports)"]);
    for tx in &report.transactions {
        let value = tx
            .channels
            .iter()
            .map(|(_, v)| *v)
            .fold(0u64, u64::saturating_add);
        table.row([
            "settle".to_string(),
            tx.signature.to_string(),
            tx.channels.len().to_string(),
            ui(value),
            tx.fee_lamports.to_string(),
        ]);
    }
    for c in &report.closes {
        table.row([
            "close".to_string(),
            c.signature.to_string(),
            "1".to_string(),
            format!("{} (refunded {})", ui(c.paid), ui(c.refunded)),
            c.fee_lamports.to_string(),
        ]);
    }
    let mut human = table.to_string();
    human.push_str(&format!(
        "\nsettled {} in {} channels, closed {} (paid {}, refunded {}), fees {} lamports, {} skipped, {} failed, {} still unsettled\n",
        ui(report.value_settled()),
        report.channels_settled(),
        report.closes.len(),
        ui(report.value_closed()),
        ui(report.value_refunded()),
        report.fee_lamports(),
        report.skipped.len(),
        report.failed.len(),
        ui(report.unsettled_value),
    ));
    for f in &report.failed {
        human.push_str(&format!("failed {}: {}\n", f.channel, f.error));
    }
    let json = json!({
        "transactions": report.transactions.iter().map(|t| json!({
            "signature": t.signature.to_string(),
            "channels": t.channels.iter().map(|(c, v)| json!({"channel": c.to_string(), "value": v.to_string()})).collect::<Vec<_>>(),
            "fee_lamports": t.fee_lamports,
            "compute_units": t.compute_units,
        })).collect::<Vec<_>>(),
        "closes": report.closes.iter().map(|c| json!({
            "signature": c.signature.to_string(),
            "channel": c.channel.to_string(),
            "with_voucher": c.with_voucher,
            "paid": c.paid.to_string(),
            "refunded": c.refunded.to_string(),
            "payer_tokens": c.payer_tokens.to_string(),
            "fee_lamports": c.fee_lamports,
            "compute_units": c.compute_units,
        })).collect::<Vec<_>>(),
        "skipped": report.skipped.iter().map(|s| json!({"channel": s.channel.to_string(), "reason": s.reason.as_str()})).collect::<Vec<_>>(),
        "failed": report.failed.iter().map(|f| json!({"channel": f.channel.to_string(), "error": f.error})).collect::<Vec<_>>(),
        "failed_transactions": report.failed_transactions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "channels_settled": report.channels_settled(),
        "value_settled": report.value_settled().to_string(),
        "value_closed": report.value_closed().to_string(),
        "value_refunded": report.value_refunded().to_string(),
        "fee_lamports": report.fee_lamports(),
        "unsettled_value": report.unsettled_value.to_string(),
        "standby": false,
    });
    Report { human, json }
}
