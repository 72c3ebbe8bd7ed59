//! Address lookup tables: the accounts every settle of one (payee, mint)
//! shares, so a v0 `settle` transaction fits one more voucher.
use paychan_sdk::Pubkey;
use paychan_sdk::ix::SettleAccounts;
use paychan_verifier::store::VoucherStore;
use paychan_voucher::ED25519_PROGRAM_ID;
use solana_address_lookup_table_interface::{
    instruction::{create_lookup_table, extend_lookup_table},
    program::ID as LOOKUP_TABLE_PROGRAM_ID,
    state::{AddressLookupTable, LOOKUP_TABLE_MAX_ADDRESSES, LOOKUP_TABLE_META_SIZE},
};
use solana_commitment_config::CommitmentConfig;
use solana_message::AddressLookupTableAccount;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

use crate::{LookupTableMode, MintAccounts, SettleError, Settler, error::Failure};

/// Largest table account read: the metadata and 256 addresses.
const MAX_TABLE_DATA: usize = LOOKUP_TABLE_META_SIZE + 32 * LOOKUP_TABLE_MAX_ADDRESSES;

/// The accounts a created table holds for settling `payee`'s channels in
/// `mint`: the vault, its token account, the payee's token account, the
/// mint, the token program and the Instructions sysvar (looked up by a v0
/// message), then the payee and the paychan and Ed25519 programs (kept
/// static by the compiler — a signer and invoked programs cannot be looked
/// up — but listed so the table names everything a settle touches).
pub(crate) fn shared_accounts(payee: &Pubkey, mint: &MintAccounts) -> Vec<Pubkey> {
    let mut accounts = lookup_accounts(payee, mint);
    accounts.extend([
        *payee,
        paychan_sdk::ID,
        Pubkey::new_from_array(ED25519_PROGRAM_ID),
    ]);
    accounts
}

/// The shared accounts a v0 settle message actually loads from the table.
fn lookup_accounts(payee: &Pubkey, mint: &MintAccounts) -> Vec<Pubkey> {
    let a = SettleAccounts::new(payee, &mint.mint, mint.token_program);
    vec![
        a.vault,
        a.vault_tokens,
        a.payee_tokens,
        a.mint,
        a.token_program,
        a.instructions,
    ]
}

/// Decodes a table account's data (bounded) into its addresses, refusing a
/// deactivated or deactivating table.
pub(crate) fn decode_table(key: Pubkey, data: &[u8]) -> Result<AddressLookupTableAccount, String> {
    if data.len() > MAX_TABLE_DATA {
        return Err(format!("{key}: {} bytes of table data", data.len()));
    }
    let table = AddressLookupTable::deserialize(data).map_err(|e| format!("{key}: {e}"))?;
    if table.meta.deactivation_slot != u64::MAX {
        return Err(format!(
            "{key} is deactivated (slot {})",
            table.meta.deactivation_slot
        ));
    }
    Ok(AddressLookupTableAccount {
        key,
        addresses: table.addresses.to_vec(),
    })
}

impl<S: VoucherStore> Settler<S> {
    /// The lookup table for settling in `mint`, when the configuration asks
    /// for one: cached, else fetched and verified (`Use`) or created,
    /// extended and waited for until usable (`Create`).
    pub(crate) async fn lookup_table(
        &self,
        mint: &MintAccounts,
    ) -> Result<Option<AddressLookupTableAccount>, Failure> {
        let mode = self.config.lookup_table;
        if mode == LookupTableMode::Off {
            return Ok(None);
        }
        let mut tables = self.tables.lock().await;
        if let Some(table) = tables.get(&mint.mint) {
            return Ok(Some(table.clone()));
        }
        let payee = self.config.payee.pubkey();
        let table = match mode {
            LookupTableMode::Off => return Ok(None),
            LookupTableMode::Use(key) => self.fetch_table(key).await?,
            LookupTableMode::Create => self.create_table(&payee, mint).await?,
        };
        let missing: Vec<Pubkey> = lookup_accounts(&payee, mint)
            .into_iter()
            .filter(|a| !table.addresses.contains(a))
            .collect();
        if !missing.is_empty() {
            return Err(Failure::Fatal(SettleError::LookupTable(format!(
                "{} lacks {missing:?} (mint {})",
                table.key, mint.mint
            ))));
        }
        tracing::info!(table = %table.key, mint = %mint.mint, "using an address lookup table");
        tables.insert(mint.mint, table.clone());
        Ok(Some(table))
    }

    /// Forgets `mint`'s table after the chain refused it (closed,
    /// deactivated): the next attempt fetches or creates it again.
    pub(crate) async fn forget_table(&self, mint: &Pubkey, error: &Failure) {
        let refused = matches!(
            error,
            Failure::Fatal(SettleError::Transaction {
                error: TransactionError::AddressLookupTableNotFound
                    | TransactionError::InvalidAddressLookupTableOwner
                    | TransactionError::InvalidAddressLookupTableData
                    | TransactionError::InvalidAddressLookupTableIndex,
                ..
            })
        );
        if refused && let Some(table) = self.tables.lock().await.remove(mint) {
            tracing::warn!(table = %table.key, %mint, "the lookup table was refused; forgetting it");
        }
    }

    async fn fetch_table(&self, key: Pubkey) -> Result<AddressLookupTableAccount, Failure> {
        let account = self
            .rpc
            .get_account_with_commitment(&key, self.config.commitment)
            .await
            .map_err(crate::error::classify_client_error)?
            .value
            .ok_or_else(|| {
                Failure::Fatal(SettleError::LookupTable(format!("{key} does not exist")))
            })?;
        if account.owner != LOOKUP_TABLE_PROGRAM_ID {
            return Err(Failure::Fatal(SettleError::LookupTable(format!(
                "{key} is owned by {}, not the address lookup table program",
                account.owner
            ))));
        }
        decode_table(key, &account.data).map_err(|e| Failure::Fatal(SettleError::LookupTable(e)))
    }

    /// Creates and extends a table (one transaction, the payee paying and
    /// owning it), then waits until the slot after the extension, when its
    /// addresses become usable.
    async fn create_table(
        &self,
        payee: &Pubkey,
        mint: &MintAccounts,
    ) -> Result<AddressLookupTableAccount, Failure> {
        // A slot in every node's SlotHashes: the finalized one.
        let recent_slot = self
            .rpc
            .get_slot_with_commitment(CommitmentConfig::finalized())
            .await
            .map_err(crate::error::classify_client_error)?;
        let (create, key) = create_lookup_table(*payee, *payee, recent_slot);
        let addresses = shared_accounts(payee, mint);
        let extend = extend_lookup_table(key, *payee, Some(*payee), addresses.clone());
        let mut report = crate::SweepReport::default();
        let (signature, _, _) = self
            .send_and_confirm(&[create, extend], "create lookup table", None, &mut report)
            .await
            .map_err(|failure| match failure {
                // Not a voucher's fault (the settle classification): the table's.
                Failure::Voucher(error)
                | Failure::Fatal(SettleError::Transaction { error, .. }) => {
                    Failure::Fatal(SettleError::LookupTable(format!("creating {key}: {error}")))
                }
                Failure::AlreadySettled => Failure::Fatal(SettleError::LookupTable(format!(
                    "creating {key}: unexpected program error"
                ))),
                other => other,
            })?;
        let landed = self
            .rpc
            .get_signature_statuses(&[signature])
            .await
            .map_err(crate::error::classify_client_error)?
            .value
            .first()
            .cloned()
            .flatten()
            .map(|s| s.slot)
            .ok_or_else(|| Failure::Transient(format!("{signature}: no status")))?;
        // Its rent is the payee's until the table is deactivated and closed
        // (the payee is its authority); a restart in `Create` mode makes
        // another, so say how to reuse this one.
        tracing::warn!(
            table = %key,
            %signature,
            slot = landed,
            "created an address lookup table paid by the payee: pass `--lookup-table {key}` \
             (LookupTableMode::Use) from now on; `solana address-lookup-table deactivate`, \
             then `close` after ~513 slots, returns its rent"
        );
        let deadline = std::time::Instant::now() + self.config.confirm_timeout;
        loop {
            let slot = self
                .rpc
                .get_slot_with_commitment(self.config.commitment)
                .await
                .map_err(crate::error::classify_client_error)?;
            if slot > landed {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(Failure::Transient(format!(
                    "lookup table {key}: slot {slot} did not pass {landed}"
                )));
            }
            tokio::time::sleep(self.config.confirm_poll).await;
        }
        Ok(AddressLookupTableAccount { key, addresses })
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use solana_address_lookup_table_interface::state::LookupTableMeta;

    use super::*;

    fn table_data(deactivation_slot: u64, addresses: &[Pubkey]) -> Vec<u8> {
        let table = AddressLookupTable {
            meta: LookupTableMeta {
                deactivation_slot,
                ..LookupTableMeta::new(Pubkey::new_unique())
            },
            addresses: Cow::Borrowed(addresses),
        };
        table.serialize_for_tests().unwrap_or_default()
    }

    #[test]
    fn tables_are_decoded_and_hostile_data_refused() {
        let key = Pubkey::new_unique();
        let addresses = [Pubkey::new_unique(), Pubkey::new_unique()];
        let decoded = decode_table(key, &table_data(u64::MAX, &addresses));
        assert_eq!(
            decoded.map(|t| (t.key, t.addresses)),
            Ok((key, addresses.to_vec()))
        );
        // Deactivated (or deactivating): it will stop working.
        assert!(decode_table(key, &table_data(7, &addresses)).is_err());
        // Garbage, truncated, misaligned or oversized data.
        assert!(decode_table(key, &[]).is_err());
        assert!(decode_table(key, &[9; 80]).is_err());
        let mut odd = table_data(u64::MAX, &addresses);
        odd.push(0);
        assert!(decode_table(key, &odd).is_err());
        let many = vec![Pubkey::new_unique(); LOOKUP_TABLE_MAX_ADDRESSES + 1];
        assert!(decode_table(key, &table_data(u64::MAX, &many)).is_err());
    }
}
