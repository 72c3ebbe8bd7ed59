//! JSON-RPC side: sending and confirming transactions, reading channels.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use paychan_sdk::{Instruction, Pubkey, state::Channel};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;

use crate::error::ClientError;

/// How often a sent transaction's status is polled.
const CONFIRM_POLL: Duration = Duration::from_millis(10);

/// RPC access with the payer's key.
pub(crate) struct Chain {
    pub(crate) rpc: RpcClient,
    pub(crate) payer: Arc<Keypair>,
    pub(crate) program_id: Pubkey,
    confirm_timeout: Duration,
}

impl Chain {
    pub(crate) fn new(
        url: &str,
        commitment: CommitmentConfig,
        payer: Arc<Keypair>,
        program_id: Pubkey,
        confirm_timeout: Duration,
    ) -> Self {
        Self {
            rpc: RpcClient::new_with_commitment(url.to_string(), commitment),
            payer,
            program_id,
            confirm_timeout,
        }
    }

    /// A recent slot (at the client's commitment).
    pub(crate) async fn slot(&self) -> Result<u64, ClientError> {
        Ok(self.rpc.get_slot().await?)
    }

    /// Signs `instructions` with the payer (fee payer) and sends them; waits
    /// until the client's commitment is reached.
    pub(crate) async fn send(
        &self,
        instructions: &[Instruction],
    ) -> Result<Signature, ClientError> {
        let blockhash = self.rpc.get_latest_blockhash().await?;
        let mut tx = Transaction::new_with_payer(instructions, Some(&self.payer.pubkey()));
        tx.try_sign(&[self.payer.as_ref()], blockhash)?;
        let sent = Instant::now();
        let signature = self.rpc.send_transaction(&tx).await?;
        loop {
            match self
                .rpc
                .get_signature_status_with_commitment(&signature, self.rpc.commitment())
                .await?
            {
                Some(Ok(())) => return Ok(signature),
                Some(Err(e)) => {
                    return Err(ClientError::TransactionFailed {
                        signature: signature.to_string(),
                        reason: e.to_string(),
                    });
                }
                None if sent.elapsed() >= self.confirm_timeout => {
                    return Err(ClientError::ConfirmationTimeout {
                        signature: signature.to_string(),
                        waited_ms: sent.elapsed().as_millis(),
                    });
                }
                None => tokio::time::sleep(CONFIRM_POLL).await,
            }
        }
    }

    /// Decodes a channel account (owner, discriminator and size checked).
    pub(crate) fn decode_channel(
        &self,
        address: &Pubkey,
        owner: &Pubkey,
        data: &[u8],
    ) -> Result<Channel, ClientError> {
        let bad = |reason: String| ClientError::Account {
            address: *address,
            reason,
        };
        if *owner != self.program_id {
            return Err(bad(format!("owned by {owner}")));
        }
        Channel::decode(data).map_err(|e| bad(e.to_string()))
    }

    /// The channels at `addresses` (`None` where no account exists).
    pub(crate) async fn channels(
        &self,
        addresses: &[Pubkey],
    ) -> Result<Vec<Option<Channel>>, ClientError> {
        let mut out = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(100) {
            let accounts = self.rpc.get_multiple_accounts(chunk).await?;
            for (address, account) in chunk.iter().zip(accounts) {
                out.push(match account {
                    None => None,
                    Some(a) => Some(self.decode_channel(address, &a.owner, &a.data)?),
                });
            }
        }
        Ok(out)
    }

    /// One channel.
    pub(crate) async fn channel(&self, address: &Pubkey) -> Result<Option<Channel>, ClientError> {
        Ok(self
            .channels(std::slice::from_ref(address))
            .await?
            .into_iter()
            .next()
            .flatten())
    }
}

/// The associated token account of `owner` in `mint`.
pub use paychan_sdk::pda::associated_token_account as associated_token_address;
