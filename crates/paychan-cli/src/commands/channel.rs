//! `paychan channel …`: open, top up, close and inspect channels.
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use paychan_sdk::Pubkey;
use paychan_sdk::{Instruction, ix, ix::OpenArgs as ProgramOpenArgs};
use paychan_sdk::{
    constants::{MAX_GRACE_PERIOD_SECS, MIN_GRACE_PERIOD_SECS},
    state::Channel,
};
use serde_json::json;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::Context;
use crate::{
    amount::{AmountInput, format_ui},
    chain::{
        Chain, MintInfo, associated_token_address, create_associated_token_account, status_name,
    },
    cli::parse_pubkey,
    error::CliError,
    keys::{read_keypair, write_keypair},
    output::{Report, Table},
};

/// Default grace period of new channels: one hour.
pub const DEFAULT_GRACE_PERIOD_SECS: i64 = 3_600;

/// `paychan channel` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Open a channel to a payee and escrow a deposit (the keypair is payer and rent payer)
    Open(OpenArgs),
    /// Add to an open channel's deposit (payer only)
    TopUp(TopUpArgs),
    /// Start the grace period after which anyone may finalize (payer only)
    RequestClose(ChannelArg),
    /// Refund the unsettled rest to the payer once the grace period is over (anyone)
    Finalize(ChannelArg),
    /// Close cooperatively and refund the payer at once (payee only). Settle the
    /// channel's latest voucher first: unsettled vouchers are forfeited
    Close(ChannelArg),
    /// Show a channel's on-chain state
    Status(ChannelArg),
}

/// Arguments of `paychan channel open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Who gets paid
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub payee: Pubkey,
    /// The token's mint
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub mint: Pubkey,
    /// Deposit: base units (1500000) or a decimal amount in the mint's decimals (1.5)
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub deposit: AmountInput,
    /// Seconds between request-close and the earliest finalize
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_GRACE_PERIOD_SECS)]
    pub grace_period: i64,
    /// Keypair file of the session key that signs vouchers [default: a new key
    /// written next to the keypair as paychan-session-<channel>.json]
    #[arg(long, value_name = "FILE")]
    pub signer_keyfile: Option<PathBuf>,
    /// The mint's token program [default: the mint account's owner]
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub token_program: Option<Pubkey>,
}

/// Arguments of `paychan channel top-up`.
#[derive(Debug, Args)]
pub struct TopUpArgs {
    /// The channel's address
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub channel: Pubkey,
    /// Amount to add: base units or a decimal amount
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub amount: AmountInput,
}

/// A channel address.
#[derive(Debug, Args)]
pub struct ChannelArg {
    /// The channel's address
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub channel: Pubkey,
}

/// Runs a `paychan channel` subcommand.
pub async fn run(ctx: &Context, command: &ChannelCommand) -> Result<Report, CliError> {
    match command {
        ChannelCommand::Open(args) => open(ctx, args).await,
        ChannelCommand::TopUp(args) => top_up(ctx, args).await,
        ChannelCommand::RequestClose(args) => request_close(ctx, &args.channel).await,
        ChannelCommand::Finalize(args) => finalize(ctx, &args.channel).await,
        ChannelCommand::Close(args) => close(ctx, &args.channel).await,
        ChannelCommand::Status(args) => status(ctx, &args.channel).await,
    }
}

fn amount_json(amount: u64, decimals: u8) -> serde_json::Value {
    json!({ "amount": amount.to_string(), "ui": format_ui(amount, decimals) })
}

fn amount_text(amount: u64, decimals: Option<u8>) -> String {
    match decimals {
        Some(d) => format!("{} ({amount} base units)", format_ui(amount, d)),
        None => format!("{amount} base units"),
    }
}

fn to_base_units(input: &AmountInput, mint: &MintInfo) -> Result<u64, CliError> {
    input
        .to_base_units(mint.decimals)
        .map_err(|source| CliError::Amount {
            input: input.to_string(),
            source,
        })
}

async fn send(
    ctx: &Context,
    chain: &Chain,
    what: &'static str,
    instructions: &[Instruction],
    payer: &Keypair,
) -> Result<Signature, CliError> {
    let spinner = ctx
        .progress
        .spinner(format!("{what}: waiting for confirmation"));
    let result = chain.send(instructions, payer).await;
    spinner.finish_and_clear();
    result
}

fn require_role(
    who: &Pubkey,
    expected: &Pubkey,
    role: &str,
    ctx: &Context,
) -> Result<(), CliError> {
    if who == expected {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "the keypair {} ({who}) is not this channel's {role} ({expected})",
            ctx.settings.keypair.value.display()
        )))
    }
}

/// Fails unless `owner`'s token account `tokens` exists and holds `amount`.
async fn require_tokens(
    chain: &Chain,
    owner: &Pubkey,
    tokens: &Pubkey,
    amount: u64,
    mint_address: &Pubkey,
    mint: &MintInfo,
) -> Result<(), CliError> {
    match chain.token_balance(tokens).await? {
        None => Err(CliError::Account(format!(
            "{owner} has no token account for mint {mint_address} (associated token account {tokens})"
        ))),
        Some(balance) if balance < amount => Err(CliError::Account(format!(
            "the token account {tokens} holds {}, less than {}",
            amount_text(balance, Some(mint.decimals)),
            amount_text(amount, Some(mint.decimals))
        ))),
        Some(_) => Ok(()),
    }
}

/// Where a generated session key goes: next to the payer's keypair file.
pub fn session_key_path(keypair_path: &Path, channel: &Pubkey) -> PathBuf {
    let dir = keypair_path.parent().unwrap_or_else(|| Path::new("."));
    dir.join(format!("paychan-session-{channel}.json"))
}

async fn open(ctx: &Context, args: &OpenArgs) -> Result<Report, CliError> {
    if !(MIN_GRACE_PERIOD_SECS..=MAX_GRACE_PERIOD_SECS).contains(&args.grace_period) {
        return Err(CliError::Usage(format!(
            "--grace-period {} is outside {MIN_GRACE_PERIOD_SECS}..={MAX_GRACE_PERIOD_SECS} seconds",
            args.grace_period
        )));
    }
    let chain = ctx.chain_for_transactions()?;
    let payer = ctx.keypair()?;
    let signer_file = args
        .signer_keyfile
        .as_deref()
        .map(read_keypair)
        .transpose()?;
    let mint = chain.mint(&args.mint).await?;
    if let Some(program) = args.token_program
        && program != mint.token_program
    {
        return Err(CliError::Usage(format!(
            "--token-program {program} is not the mint's token program {}",
            mint.token_program
        )));
    }
    let deposit = to_base_units(&args.deposit, &mint)?;
    if deposit == 0 {
        return Err(CliError::Usage(
            "the deposit must be greater than zero".into(),
        ));
    }
    let payer_tokens = associated_token_address(&payer.pubkey(), &args.mint, &mint.token_program);
    require_tokens(
        &chain,
        &payer.pubkey(),
        &payer_tokens,
        deposit,
        &args.mint,
        &mint,
    )
    .await?;

    let (session, generated) = match signer_file {
        Some(key) => (key, false),
        None => (Keypair::new(), true),
    };
    let program_args = ProgramOpenArgs {
        salt: rand::random(),
        open_slot: chain.slot().await?,
        deposit,
        grace_period: args.grace_period,
        authorized_signer: session.pubkey(),
    };
    let (salt, open_slot) = (program_args.salt, program_args.open_slot);
    let accounts = ix::OpenAccounts {
        payer: payer.pubkey(),
        rent_payer: payer.pubkey(),
        payee: args.payee,
        mint: args.mint,
        payer_tokens,
        token_program: mint.token_program,
    };
    let (instruction, channel) = ix::open(&accounts, program_args);
    let signer_path = match (&args.signer_keyfile, generated) {
        (Some(path), _) => path.clone(),
        (None, _) => {
            // Written before sending, so a confirmed channel never lacks its key.
            let path = session_key_path(&ctx.settings.keypair.value, &channel);
            write_keypair(&session, &path, false)?;
            path
        }
    };
    let signature = match send(ctx, &chain, "open", &[instruction], &payer).await {
        Ok(signature) => signature,
        Err(e) => {
            // A definite on-chain failure leaves no channel: drop its unused key.
            if generated && matches!(e, CliError::Program { .. } | CliError::Transaction(_)) {
                let _ = std::fs::remove_file(&signer_path);
            }
            return Err(e);
        }
    };

    let mut table = Table::key_value();
    table
        .kv("channel", channel)
        .kv("signature", signature)
        .kv("payer", payer.pubkey())
        .kv("payee", args.payee)
        .kv("mint", args.mint)
        .kv("deposit", amount_text(deposit, Some(mint.decimals)))
        .kv("grace period", format!("{} s", args.grace_period))
        .kv("signer", session.pubkey())
        .kv("signer keyfile", signer_path.display());
    Ok(Report::table(
        &table,
        json!({
            "command": "channel open",
            "channel": channel.to_string(),
            "signature": signature.to_string(),
            "payer": payer.pubkey().to_string(),
            "payee": args.payee.to_string(),
            "mint": args.mint.to_string(),
            "token_program": mint.token_program.to_string(),
            "decimals": mint.decimals,
            "deposit": amount_json(deposit, mint.decimals),
            "grace_period": args.grace_period,
            "authorized_signer": session.pubkey().to_string(),
            "signer_keyfile": signer_path,
            "signer_generated": generated,
            "salt": salt.to_string(),
            "open_slot": open_slot,
        }),
    ))
}

async fn top_up(ctx: &Context, args: &TopUpArgs) -> Result<Report, CliError> {
    let chain = ctx.chain_for_transactions()?;
    let payer = ctx.keypair()?;
    let channel = chain.channel(&args.channel).await?;
    require_role(&payer.pubkey(), &channel.payer, "payer", ctx)?;
    let mint = chain.mint(&channel.mint).await?;
    let amount = to_base_units(&args.amount, &mint)?;
    let payer_tokens =
        associated_token_address(&payer.pubkey(), &channel.mint, &mint.token_program);
    require_tokens(
        &chain,
        &payer.pubkey(),
        &payer_tokens,
        amount,
        &channel.mint,
        &mint,
    )
    .await?;
    let instruction = ix::top_up(
        &args.channel,
        &payer.pubkey(),
        &payer_tokens,
        &channel.payee,
        &channel.mint,
        &mint.token_program,
        amount,
    );
    let signature = send(ctx, &chain, "top-up", &[instruction], &payer).await?;
    let after = chain.channel(&args.channel).await?;
    let mut table = Table::key_value();
    table
        .kv("channel", args.channel)
        .kv("signature", signature)
        .kv("added", amount_text(amount, Some(mint.decimals)))
        .kv("deposit", amount_text(after.deposit, Some(mint.decimals)));
    Ok(Report::table(
        &table,
        json!({
            "command": "channel top-up",
            "channel": args.channel.to_string(),
            "signature": signature.to_string(),
            "added": amount_json(amount, mint.decimals),
            "deposit": amount_json(after.deposit, mint.decimals),
        }),
    ))
}

async fn request_close(ctx: &Context, address: &Pubkey) -> Result<Report, CliError> {
    let chain = ctx.chain_for_transactions()?;
    let payer = ctx.keypair()?;
    let channel = chain.channel(address).await?;
    require_role(&payer.pubkey(), &channel.payer, "payer", ctx)?;
    let instruction = ix::request_close(address, &payer.pubkey());
    let signature = send(ctx, &chain, "request-close", &[instruction], &payer).await?;
    let after = chain.channel(address).await?;
    let finalize_after = after.grace_ends_at();
    let mut table = Table::key_value();
    table
        .kv("channel", address)
        .kv("signature", signature)
        .kv(
            "close requested at",
            timestamp_text(after.closure_started_at),
        )
        .kv(
            "finalize after",
            finalize_after.map_or_else(|| "-".to_string(), timestamp_text),
        );
    Ok(Report::table(
        &table,
        json!({
            "command": "channel request-close",
            "channel": address.to_string(),
            "signature": signature.to_string(),
            "close_requested_at": after.closure_started_at,
            "finalize_after": finalize_after,
        }),
    ))
}

/// Instructions creating whichever of `owners`' associated token accounts
/// are missing, paid by `funder`.
async fn missing_token_accounts(
    chain: &Chain,
    funder: &Pubkey,
    owners: &[Pubkey],
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Result<(Vec<Pubkey>, Vec<Instruction>), CliError> {
    let mut addresses = Vec::with_capacity(owners.len());
    let mut create = Vec::new();
    for owner in owners {
        let address = associated_token_address(owner, mint, token_program);
        if chain.token_balance(&address).await?.is_none() {
            create.push(create_associated_token_account(
                funder,
                owner,
                mint,
                token_program,
            ));
        }
        addresses.push(address);
    }
    Ok((addresses, create))
}

fn channel_accounts(
    address: &Pubkey,
    channel: &Channel,
    mint: &MintInfo,
    payer_tokens: Pubkey,
) -> ix::ChannelAccounts {
    ix::ChannelAccounts {
        channel: *address,
        payee: channel.payee,
        mint: channel.mint,
        token_program: mint.token_program,
        payer_tokens,
        rent_payer: channel.rent_payer,
    }
}

async fn finalize(ctx: &Context, address: &Pubkey) -> Result<Report, CliError> {
    let end = Ending::load(ctx, address, false).await?;
    let (tokens, mut instructions) = end.token_accounts(&[end.channel.payer]).await?;
    let payer_tokens = tokens.first().copied().unwrap_or_default();
    instructions.push(ix::finalize(&end.accounts(payer_tokens)));
    end.finish(ctx, "finalize", &instructions, payer_tokens)
        .await
}

async fn close(ctx: &Context, address: &Pubkey) -> Result<Report, CliError> {
    let end = Ending::load(ctx, address, true).await?;
    let owners = [end.channel.payee, end.channel.payer];
    let (tokens, mut instructions) = end.token_accounts(&owners).await?;
    // The first is the payee's payout account (created when missing), where
    // `close` pays: the program pays the payee nowhere else.
    let payer_tokens = match tokens.as_slice() {
        [_payout, payer_tokens] => *payer_tokens,
        _ => return Err(CliError::Usage("internal: token accounts".into())),
    };
    instructions.push(ix::close(&end.accounts(payer_tokens), false));
    end.finish(ctx, "close", &instructions, payer_tokens).await
}

/// What `channel finalize` and `channel close` start from: the caller (the
/// `--keypair`), the channel, its mint and what ending it refunds.
struct Ending {
    chain: Chain,
    caller: Keypair,
    address: Pubkey,
    channel: Channel,
    mint: MintInfo,
    refund: u64,
}

impl Ending {
    /// Reads the channel at `address`; with `payee_only` the caller must be
    /// its payee (checked before the mint is read).
    async fn load(ctx: &Context, address: &Pubkey, payee_only: bool) -> Result<Self, CliError> {
        let chain = ctx.chain_for_transactions()?;
        let caller = ctx.keypair()?;
        let channel = chain.channel(address).await?;
        if payee_only {
            require_role(&caller.pubkey(), &channel.payee, "payee", ctx)?;
        }
        let mint = chain.mint(&channel.mint).await?;
        let refund = channel.remaining().unwrap_or(0);
        Ok(Self {
            chain,
            caller,
            address: *address,
            channel,
            mint,
            refund,
        })
    }

    /// The token accounts of `owners` in the channel's mint, and the
    /// instructions creating the missing ones (the caller paying).
    async fn token_accounts(
        &self,
        owners: &[Pubkey],
    ) -> Result<(Vec<Pubkey>, Vec<Instruction>), CliError> {
        let funder = self.caller.pubkey();
        let (mint, program) = (&self.channel.mint, &self.mint.token_program);
        missing_token_accounts(&self.chain, &funder, owners, mint, program).await
    }

    /// The channel's accounts, refunding to `payer_tokens`.
    fn accounts(&self, payer_tokens: Pubkey) -> ix::ChannelAccounts {
        channel_accounts(&self.address, &self.channel, &self.mint, payer_tokens)
    }

    /// Sends `instructions` (the caller signing and paying; `what` is
    /// `finalize` or `close`) and reports the channel's end and the refund
    /// to `payer_tokens`.
    async fn finish(
        self,
        ctx: &Context,
        what: &'static str,
        instructions: &[Instruction],
        payer_tokens: Pubkey,
    ) -> Result<Report, CliError> {
        let Self {
            chain,
            address,
            mint,
            refund,
            ..
        } = &self;
        let signature = send(ctx, chain, what, instructions, &self.caller).await?;
        // The account is deleted at once when its open-slot window has passed.
        let after = chain.try_channel(address).await?;
        let status = after
            .as_ref()
            .and_then(|c| c.status().ok())
            .map_or("closed (account deleted)", status_name);
        let mut table = Table::key_value();
        table
            .kv("channel", address)
            .kv("signature", signature)
            .kv("status", status)
            .kv("refunded", amount_text(*refund, Some(mint.decimals)))
            .kv("refunded to", payer_tokens);
        Ok(Report::table(
            &table,
            json!({
                "command": format!("channel {what}"),
                "channel": address.to_string(),
                "signature": signature.to_string(),
                "status": status,
                "account_deleted": after.is_none(),
                "refunded": amount_json(*refund, mint.decimals),
                "payer_tokens": payer_tokens.to_string(),
            }),
        ))
    }
}

fn timestamp_text(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }) {
        Some(text) => format!("{text} ({unix})"),
        None => unix.to_string(),
    }
}

async fn status(ctx: &Context, address: &Pubkey) -> Result<Report, CliError> {
    let chain = ctx.chain();
    let channel = chain.channel(address).await?;
    let status = channel
        .status()
        .map_err(|_| CliError::Account(format!("{address}: unknown status")))?;
    // Decimals only make the output friendlier; a missing mint is not fatal.
    let decimals = chain.mint(&channel.mint).await.ok().map(|m| m.decimals);
    let remaining = channel.remaining().map_err(|_| {
        CliError::Account(format!("{address}: settled + refunded exceed the deposit"))
    })?;
    let close_requested_at = (channel.closure_started_at > 0).then_some(channel.closure_started_at);
    let finalize_after = close_requested_at.and_then(|_| channel.grace_ends_at());
    let amount = |a: u64| match decimals {
        Some(d) => amount_json(a, d),
        None => json!({ "amount": a.to_string(), "ui": null }),
    };
    let mut table = Table::key_value();
    table
        .kv("channel", address)
        .kv("status", status_name(status))
        .kv("payer", channel.payer)
        .kv("payee", channel.payee)
        .kv("mint", channel.mint)
        .kv("signer", channel.authorized_signer)
        .kv("rent payer", channel.rent_payer)
        .kv("deposit", amount_text(channel.deposit, decimals))
        .kv("settled", amount_text(channel.settled, decimals))
        .kv("refunded", amount_text(channel.refunded, decimals))
        .kv("remaining", amount_text(remaining, decimals))
        .kv("grace period", format!("{} s", channel.grace_period))
        .kv(
            "close requested at",
            close_requested_at.map_or_else(|| "-".to_string(), timestamp_text),
        )
        .kv(
            "finalize after",
            finalize_after.map_or_else(|| "-".to_string(), timestamp_text),
        )
        .kv("open slot", channel.open_slot);
    Ok(Report::table(
        &table,
        json!({
            "command": "channel status",
            "channel": address.to_string(),
            "status": status_name(status),
            "payer": channel.payer.to_string(),
            "payee": channel.payee.to_string(),
            "mint": channel.mint.to_string(),
            "authorized_signer": channel.authorized_signer.to_string(),
            "rent_payer": channel.rent_payer.to_string(),
            "decimals": decimals,
            "deposit": amount(channel.deposit),
            "settled": amount(channel.settled),
            "refunded": amount(channel.refunded),
            "remaining": amount(remaining),
            "grace_period": channel.grace_period,
            "close_requested_at": close_requested_at,
            "finalize_after": finalize_after,
            "open_slot": channel.open_slot,
            "salt": channel.salt.to_string(),
            "version": channel.version,
        }),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_go_next_to_the_keypair() {
        let channel = Pubkey::new_unique();
        assert_eq!(
            session_key_path(Path::new("/home/u/.config/solana/id.json"), &channel),
            PathBuf::from(format!(
                "/home/u/.config/solana/paychan-session-{channel}.json"
            ))
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp_text(0), "1970-01-01T00:00:00Z (0)");
        assert_eq!(timestamp_text(i64::MAX), i64::MAX.to_string());
    }
}
