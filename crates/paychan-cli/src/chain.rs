//! JSON-RPC access: accounts decoded with `paychan-sdk`,
//! transactions sent and their failures mapped to [`CliError`]s.
use paychan_sdk::Instruction;
use paychan_sdk::Pubkey;
use paychan_sdk::state::{Channel, ChannelStatus};
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;

use crate::{config::Commitment, error::CliError};

/// The SPL Token-2022 program id.
pub const TOKEN_2022_PROGRAM_ID: Pubkey =
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");

/// Length of an SPL mint's base state (Token-2022 mints may carry extensions after it).
const MINT_BASE_LEN: usize = 82;
/// Offset of `decimals` in the mint's base state.
const MINT_DECIMALS_OFFSET: usize = 44;
/// Offset of `is_initialized` in the mint's base state.
const MINT_INITIALIZED_OFFSET: usize = 45;
/// Length of an SPL token account's base state.
const TOKEN_ACCOUNT_BASE_LEN: usize = 165;

/// What a command needs to know about a mint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MintInfo {
    /// The mint's token program (its owner): SPL Token or Token-2022.
    pub token_program: Pubkey,
    /// Its decimals.
    pub decimals: u8,
}

/// The associated token account of `owner` in `mint`.
pub use paychan_sdk::pda::associated_token_account as associated_token_address;

/// `CreateIdempotent` of `owner`'s associated token account, paid by `funder`.
pub fn create_associated_token_account(
    funder: &Pubkey,
    owner: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Instruction {
    spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
        funder,
        owner,
        mint,
        token_program,
    )
}

/// Decodes a channel account's data (owner already checked): size,
/// discriminator and status are validated.
pub fn decode_channel(address: &Pubkey, data: &[u8]) -> Result<Channel, CliError> {
    let bad = |reason: String| CliError::Account(format!("{address} is not a channel: {reason}"));
    let channel = Channel::decode(data).map_err(|e| bad(e.to_string()))?;
    channel
        .status()
        .map_err(|_| bad(format!("unknown status byte {}", channel.status)))?;
    Ok(channel)
}

/// The status's lowercase name.
pub fn status_name(status: ChannelStatus) -> &'static str {
    match status {
        ChannelStatus::Open => "open",
        ChannelStatus::Closing => "closing",
        ChannelStatus::Closed => "closed",
    }
}

/// A JSON-RPC endpoint and the paychan program on it.
pub struct Chain {
    client: RpcClient,
    url: String,
    program_id: Pubkey,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("url", &paychan_verifier::redact::url(&self.url))
            .field("program_id", &self.program_id)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// A client for `url` reading and confirming at `commitment`.
    pub fn new(url: &str, commitment: Commitment, program_id: Pubkey) -> Self {
        Self {
            client: RpcClient::new_with_commitment(url.to_string(), commitment.config()),
            url: url.to_string(),
            program_id,
        }
    }

    /// The underlying RPC client.
    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The paychan program id this chain is used with.
    pub fn program_id(&self) -> Pubkey {
        self.program_id
    }

    fn rpc_error(&self, err: solana_rpc_client::api::client_error::Error) -> CliError {
        CliError::from_client(err, &self.url, &[], &self.program_id)
    }

    /// An account's owner and data, `None` when it does not exist.
    pub async fn account(&self, address: &Pubkey) -> Result<Option<(Pubkey, Vec<u8>)>, CliError> {
        let response = self
            .client
            .get_account_with_commitment(address, self.client.commitment())
            .await
            .map_err(|e| self.rpc_error(e))?;
        Ok(response.value.map(|a| (a.owner, a.data)))
    }

    /// The current slot.
    pub async fn slot(&self) -> Result<u64, CliError> {
        self.client.get_slot().await.map_err(|e| self.rpc_error(e))
    }

    /// A mint's token program and decimals.
    pub async fn mint(&self, mint: &Pubkey) -> Result<MintInfo, CliError> {
        let (owner, data) = self
            .account(mint)
            .await?
            .ok_or_else(|| CliError::Account(format!("mint {mint} does not exist")))?;
        if owner != paychan_sdk::TOKEN_PROGRAM_ID && owner != TOKEN_2022_PROGRAM_ID {
            return Err(CliError::Account(format!(
                "{mint} is not a token mint (owned by {owner})"
            )));
        }
        let decimals = data.get(MINT_DECIMALS_OFFSET).copied();
        match (
            data.len() >= MINT_BASE_LEN,
            decimals,
            data.get(MINT_INITIALIZED_OFFSET),
        ) {
            (true, Some(decimals), Some(1)) => Ok(MintInfo {
                token_program: owner,
                decimals,
            }),
            _ => Err(CliError::Account(format!(
                "{mint} is not an initialized mint ({} bytes)",
                data.len()
            ))),
        }
    }

    /// A token account's balance in base units, `None` when it does not exist.
    pub async fn token_balance(&self, address: &Pubkey) -> Result<Option<u64>, CliError> {
        let Some((owner, data)) = self.account(address).await? else {
            return Ok(None);
        };
        if (owner != paychan_sdk::TOKEN_PROGRAM_ID && owner != TOKEN_2022_PROGRAM_ID)
            || data.len() < TOKEN_ACCOUNT_BASE_LEN
        {
            return Err(CliError::Account(format!(
                "{address} is not a token account"
            )));
        }
        // Layout: mint (32), owner (32), amount (u64 LE).
        let amount = data
            .get(64..72)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| CliError::Account(format!("{address} is not a token account")))?;
        Ok(Some(amount))
    }

    /// A channel account, `None` when it does not exist (never opened, or
    /// deleted after its close).
    pub async fn try_channel(&self, address: &Pubkey) -> Result<Option<Channel>, CliError> {
        let Some((owner, data)) = self.account(address).await? else {
            return Ok(None);
        };
        if owner != self.program_id {
            return Err(CliError::Account(format!(
                "{address} is not a paychan channel: owned by {owner}, not the program {}",
                self.program_id
            )));
        }
        decode_channel(address, &data).map(Some)
    }

    /// A channel account that must exist.
    pub async fn channel(&self, address: &Pubkey) -> Result<Channel, CliError> {
        self.try_channel(address).await?.ok_or_else(|| {
            CliError::Account(format!(
                "channel {address} does not exist (never opened, or closed and deleted)"
            ))
        })
    }

    /// Signs `instructions` by `payer` alone (it pays the fees) with a fresh
    /// blockhash and sends them with `send_and_confirm_transaction`.
    pub async fn send(
        &self,
        instructions: &[Instruction],
        payer: &Keypair,
    ) -> Result<Signature, CliError> {
        let blockhash = self
            .client
            .get_latest_blockhash()
            .await
            .map_err(|e| self.rpc_error(e))?;
        let mut tx = Transaction::new_with_payer(instructions, Some(&payer.pubkey()));
        tx.try_sign(&[payer], blockhash)
            .map_err(|e| CliError::Usage(format!("signing the transaction: {e}")))?;
        let programs: Vec<Pubkey> = instructions.iter().map(|ix| ix.program_id).collect();
        tracing::debug!(?programs, "sending a transaction");
        let signature = self
            .client
            .send_and_confirm_transaction(&tx)
            .await
            .map_err(|e| {
                tracing::debug!(error = ?e, "the transaction failed");
                CliError::from_client(e, &self.url, &programs, &self.program_id)
            })?;
        tracing::info!(%signature, "confirmed");
        Ok(signature)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn channel_decoding_checks_size_discriminator_and_status() {
        let address = Pubkey::new_unique();
        assert!(decode_channel(&address, &[]).is_err());
        let mut data = vec![0u8; 8 + Channel::LEN];
        assert!(decode_channel(&address, &data).is_err(), "discriminator");
        data[..8].copy_from_slice(&Channel::DISCRIMINATOR);
        let err = decode_channel(&address, &data).unwrap_err();
        assert!(err.to_string().contains("status"), "{err}");
        // status is the third byte after the 5 pubkeys, 7 u64/i64 and 2 u8s.
        data[8 + 5 * 32 + 7 * 8 + 2] = 1;
        let channel = decode_channel(&address, &data).unwrap();
        assert_eq!(channel.status().unwrap(), ChannelStatus::Open);
        data.push(0);
        assert!(decode_channel(&address, &data).is_err(), "length");
    }
}
