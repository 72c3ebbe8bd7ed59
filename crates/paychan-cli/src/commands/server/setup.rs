//! What a server is, resolved: [`ServerSetup`] from the flags over the
//! config file and the keys, the network from the chain's genesis hash,
//! the mint's decimals and token program from the chain, and the payee's
//! token account ([`ensure_payee_tokens`]).
use std::time::Duration;

use paychan_sdk::Pubkey;
use paychan_verifier::store::Durability;
use paychan_x402::network::caip2_for_genesis;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::{
    config::{
        DEFAULT_GRACE_PERIOD_SECS, DEFAULT_STORE, DEFAULT_THRESHOLD, ServeConfig, ServerArgs,
    },
    settler::SettlerOptions,
    store::{StoreSpec, parse_durability},
};
use crate::{
    amount::AmountInput,
    chain::{Chain, MintInfo, associated_token_address, create_associated_token_account},
    cli::parse_pubkey,
    commands::Context,
    error::CliError,
};

/// The CAIP-2 network of the RPC node (`solana:` + its genesis hash prefix),
/// checked against `configured` when one is given.
pub async fn network_for(chain: &Chain, configured: Option<&str>) -> Result<String, CliError> {
    let genesis = chain
        .client()
        .get_genesis_hash()
        .await
        .map_err(|e| CliError::from_client(e, chain.url(), &[], &chain.program_id()))?;
    let network = caip2_for_genesis(&genesis.to_string());
    match configured {
        Some(c) if c != network => Err(CliError::Usage(format!(
            "network {c} is configured, but {} is {network} (genesis {genesis})",
            chain.url()
        ))),
        _ => Ok(network),
    }
}

/// The payee's payout account in `mint` (its associated token account, the
/// only account the program pays it in), created (the payee paying) when
/// missing.
pub async fn ensure_payee_tokens(
    chain: &Chain,
    payee: &Keypair,
    mint: &Pubkey,
    info: &MintInfo,
) -> Result<Pubkey, CliError> {
    let ata = associated_token_address(&payee.pubkey(), mint, &info.token_program);
    if chain.token_balance(&ata).await?.is_none() {
        tracing::info!(%ata, "creating the payee's associated token account");
        let create = create_associated_token_account(
            &payee.pubkey(),
            &payee.pubkey(),
            mint,
            &info.token_program,
        );
        chain.send(&[create], payee).await?;
    }
    Ok(ata)
}

/// The voucher store: `--store`, else the config file's, else [`DEFAULT_STORE`].
pub fn store_spec(flag: Option<&String>, file: &ServeConfig) -> Result<StoreSpec, CliError> {
    flag.or(file.store.as_ref())
        .map_or(DEFAULT_STORE, String::as_str)
        .parse::<StoreSpec>()
        .map_err(CliError::Usage)
}

/// The settle threshold per channel in base units of the mint: `--threshold`,
/// else the config file's `settle_threshold`, else [`DEFAULT_THRESHOLD`].
pub fn settle_threshold(
    flag: Option<&AmountInput>,
    file: &ServeConfig,
    mint: &MintInfo,
) -> Result<u64, CliError> {
    let threshold = match flag {
        Some(t) => t.clone(),
        None => {
            let text = file
                .settle_threshold
                .as_deref()
                .unwrap_or(DEFAULT_THRESHOLD);
            text.parse::<AmountInput>()
                .map_err(|source| CliError::Amount {
                    input: text.to_string(),
                    source,
                })?
        }
    };
    threshold
        .to_base_units(mint.decimals)
        .map_err(|source| CliError::Amount {
            input: threshold.to_string(),
            source,
        })
}

/// The keypair, chain and [`ServerSetup`] `paychan serve` and `paychan
/// facilitator` start from. Only the settler signs: with `--no-settler` the
/// keypair is optional; it only names the payee when `--payee` and the
/// config do not.
pub async fn prepare_server(
    ctx: &Context,
    args: &ServerArgs,
    default_listen: &str,
) -> Result<(Option<Keypair>, Chain, ServerSetup), CliError> {
    let keypair = if args.no_settler {
        ctx.keypair().ok()
    } else {
        Some(ctx.keypair()?)
    };
    let chain = args.chain(ctx)?;
    let setup = resolve_server(ctx, &chain, args, default_listen, keypair.as_ref()).await?;
    Ok((keypair, chain, setup))
}

/// The chain-side setup of a server: resolved from flags, file and chain.
#[derive(Debug)]
pub struct ServerSetup {
    /// The config file's contents (routes etc.).
    pub file: ServeConfig,
    /// The listen address.
    pub listen: String,
    /// The CAIP-2 network.
    pub network: String,
    /// The payee.
    pub payee: Pubkey,
    /// The mint.
    pub mint: Pubkey,
    /// Its decimals and token program.
    pub mint_info: MintInfo,
    /// Grace period required, seconds.
    pub grace_period: i64,
    /// The store spec.
    pub store: StoreSpec,
    /// redb durability.
    pub durability: Durability,
    /// Websocket URL.
    pub ws_url: Option<String>,
    /// Poll interval of channel snapshots.
    pub poll_interval: Duration,
    /// Settler options.
    pub settler: SettlerOptions,
}

impl ServerSetup {
    /// The JSON report of a server stopped after serving on `addr`.
    pub fn stopped_json(&self, addr: std::net::SocketAddr) -> serde_json::Value {
        serde_json::json!({
            "stopped": true,
            "listen": addr.to_string(),
            "network": self.network,
            "payee": self.payee.to_string(),
            "mint": self.mint.to_string(),
        })
    }
}

/// Resolves a server's setup: flags over the file, the network from the
/// chain's genesis hash, the mint's decimals and token program from the chain.
pub async fn resolve_server(
    ctx: &Context,
    chain: &Chain,
    args: &ServerArgs,
    default_listen: &str,
    keypair: Option<&Keypair>,
) -> Result<ServerSetup, CliError> {
    let file = ServeConfig::resolve(ctx, args.file.as_deref())?;
    let pubkey = |what: &str, v: &Option<String>| -> Result<Option<Pubkey>, CliError> {
        v.as_deref()
            .map(|s| parse_pubkey(s).map_err(|e| CliError::Usage(format!("{what}: {e}"))))
            .transpose()
    };
    let mint = match args.mint {
        Some(m) => m,
        None => pubkey("mint", &file.mint)?.ok_or_else(|| {
            CliError::Usage("no mint: pass --mint or set mint in the server config".into())
        })?,
    };
    let payee = match args.payee {
        Some(p) => p,
        None => match (pubkey("payee", &file.payee)?, keypair) {
            (Some(p), _) => p,
            (None, Some(k)) => k.pubkey(),
            (None, None) => {
                return Err(CliError::Usage(
                    "no payee: pass --payee, set payee in the server config, or give the payee's \
                     keypair (--no-settler does not need it otherwise)"
                        .into(),
                ));
            }
        },
    };
    let network = network_for(chain, file.network.as_deref()).await?;
    let mint_info = chain.mint(&mint).await?;
    let store = store_spec(args.store.as_ref(), &file)?;
    let durability = parse_durability(
        args.durability
            .as_deref()
            .or(file.durability.as_deref())
            .unwrap_or("sync"),
    )
    .map_err(CliError::Usage)?;
    let threshold = settle_threshold(args.threshold.as_ref(), &file, &mint_info)?;
    let grace_period = file.grace_period.unwrap_or(DEFAULT_GRACE_PERIOD_SECS);
    if !(paychan_sdk::constants::MIN_GRACE_PERIOD_SECS
        ..=paychan_sdk::constants::MAX_GRACE_PERIOD_SECS)
        .contains(&grace_period)
    {
        return Err(CliError::Usage(format!(
            "grace_period {grace_period} is outside the program's {}..={} seconds",
            paychan_sdk::constants::MIN_GRACE_PERIOD_SECS,
            paychan_sdk::constants::MAX_GRACE_PERIOD_SECS
        )));
    }
    let secs = |v: Option<u64>, default: u64| Duration::from_secs(v.unwrap_or(default).max(1));
    Ok(ServerSetup {
        listen: args
            .listen
            .clone()
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| default_listen.to_string()),
        network,
        payee,
        mint,
        mint_info,
        grace_period,
        store,
        durability,
        ws_url: args.ws_url.clone().or_else(|| file.ws_url.clone()),
        poll_interval: Duration::from_millis(file.poll_interval_ms.unwrap_or(2_000).max(50)),
        settler: SettlerOptions {
            threshold,
            interval: secs(file.settle_interval, 30),
            sweep_interval: secs(file.sweep_interval, 3_600),
            close_on_request: true,
            lookup_table: paychan_settler::LookupTableMode::Off,
            sweep_on_start: true,
            confirm_poll: None,
        },
        file,
    })
}
