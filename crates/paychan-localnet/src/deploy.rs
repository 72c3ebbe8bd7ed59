//! How the program gets onto the embedded chain: through the upgradeable
//! loader (loader v3), like on a real cluster.
//!
//! The program's address is fixed by `declare_id!` and its private key is
//! not in the repository, so a `DeployWithMaxDataLen` (which the program
//! keypair must sign) is impossible at that address. Instead, before the
//! chain starts, exactly two accounts are written directly:
//!
//! * the Program account at the declared id (owner loader v3, executable,
//!   `Program { programdata_address }`), written while its ProgramData does
//!   not exist yet, so the SVM's program cache holds a *closed* tombstone
//!   for it — no code is loaded;
//! * its ProgramData account: the 45-byte header (`ProgramData { slot: 0,
//!   upgrade_authority: Some(local key) }`) followed by zeros, as many as
//!   the `.so` has bytes. That placeholder is not an ELF and never runs.
//!
//! Then the real bytes arrive by transactions, as `solana program upgrade`
//! sends them: `create_account` + `InitializeBuffer` for a buffer, one
//! `Write` per chunk (each transaction ≤ 1,232 bytes), and `Upgrade`
//! signed by the local upgrade authority. The loader checks the buffer and
//! verifies the ELF (the same `deploy_program!` path a cluster runs) before
//! it copies the bytes into ProgramData, so every chain that starts proves
//! the `.so` passes the loader. What differs from a cluster: the two
//! accounts above are not created by `DeployWithMaxDataLen`, and the
//! upgrade authority is a key of the chain's own (see
//! [`crate::LocalChain::program_upgrade_authority`]).
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use paychan_sdk::Pubkey;
use sha2::{Digest, Sha256};
use solana_keypair::Keypair;
use solana_loader_v3_interface::{
    get_program_data_address,
    instruction::{create_buffer, upgrade, write},
    state::UpgradeableLoaderState,
};
use solana_signer::Signer;
use solana_transaction::Transaction;
use surfpool_core::{
    solana_account::Account,
    solana_rpc_client::{
        api::config::RpcSendTransactionConfig, nonblocking::rpc_client::RpcClient,
    },
    surfnet::locker::SurfnetSvmLocker,
};

use crate::{CONFIRM_POLL_INTERVAL, CONFIRM_TIMEOUT, LocalnetError};

/// The upgradeable loader's program id.
pub const LOADER_V3_ID: Pubkey =
    Pubkey::from_str_const("BPFLoaderUpgradeab1e11111111111111111111111");
/// Length of a ProgramData account's header (`UpgradeableLoaderState::ProgramData`).
pub const PROGRAMDATA_HEADER_LEN: usize = UpgradeableLoaderState::size_of_programdata_metadata();
/// Largest transaction the network accepts (bytes on the wire).
pub const PACKET_DATA_SIZE: usize = 1232;
/// Write transactions sent before their confirmations are awaited, with one
/// fresh blockhash per batch: surfpool's `Transaction` mode makes a block
/// per transaction, and surfpool 1.6.1 refused (`BlockhashNotFound`) the
/// 46th transaction signed with one blockhash in a measured run.
const WRITE_BATCH: usize = 32;

/// What deploying the program through the loader took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramDeploy {
    /// Length of the `.so` in bytes.
    pub program_len: usize,
    /// Bytes per `Write` instruction.
    pub chunk_len: usize,
    /// Transactions sent: 1 buffer creation + the writes + 1 `Upgrade`.
    pub transactions: usize,
    /// Of which `Write`s.
    pub write_transactions: usize,
    /// Wall time from the buffer's creation to the `Upgrade`'s confirmation.
    pub elapsed: Duration,
    /// The ProgramData account's `slot` after the `Upgrade`.
    pub deployed_slot: u64,
    /// [`executable_sha256`] of the deployed bytes, read back over JSON-RPC.
    pub sha256: [u8; 32],
}

/// The executable bytes of a ProgramData account: its data after the
/// 45-byte header, trailing zero bytes excluded (ProgramData is sized for
/// `max_data_len` and zero-padded). `None` when `data` is not a
/// ProgramData account's (wrong tag or too short).
pub fn programdata_executable(data: &[u8]) -> Option<&[u8]> {
    if data.get(..4)? != 3u32.to_le_bytes() {
        return None;
    }
    Some(trim_trailing_zeros(data.get(PROGRAMDATA_HEADER_LEN..)?))
}

/// `bytes` without its trailing zero bytes.
pub fn trim_trailing_zeros(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// SHA-256 of `bytes` with trailing zero bytes excluded: what is compared
/// between a local `.so` and a ProgramData account (the convention of
/// `solana-verify get-executable-hash` and `get-program-hash`).
pub fn executable_sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(trim_trailing_zeros(bytes)).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Program and placeholder ProgramData accounts (see the module docs):
/// the only program state written directly, before the runloop starts.
pub(crate) fn create_placeholder(
    locker: &SurfnetSvmLocker,
    program_id: Pubkey,
    authority: Pubkey,
    capacity: usize,
) -> Result<(), String> {
    let programdata = get_program_data_address(&program_id);
    let mut program_data = Vec::with_capacity(UpgradeableLoaderState::size_of_program());
    program_data.extend_from_slice(&2u32.to_le_bytes());
    program_data.extend_from_slice(programdata.as_ref());
    let mut header = Vec::with_capacity(PROGRAMDATA_HEADER_LEN.saturating_add(capacity));
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes()); // slot 0: never deployed
    header.push(1); // Some(authority)
    header.extend_from_slice(authority.as_ref());
    header.resize(PROGRAMDATA_HEADER_LEN.saturating_add(capacity), 0);
    locker.with_svm_writer(move |svm| {
        if svm
            .get_account(&program_id)
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Err(format!("an account exists at {program_id} already"));
        }
        // The Program account first: its ProgramData does not exist yet, so
        // the SVM caches a closed tombstone instead of loading any code.
        let program = Account {
            lamports: svm
                .inner
                .minimum_balance_for_rent_exemption(program_data.len()),
            data: program_data,
            owner: LOADER_V3_ID,
            executable: true,
            rent_epoch: 0,
        };
        svm.set_account(&program_id, program)
            .map_err(|e| format!("program account {program_id}: {e}"))?;
        let placeholder = Account {
            lamports: svm.inner.minimum_balance_for_rent_exemption(header.len()),
            data: header,
            owner: LOADER_V3_ID,
            executable: false,
            rent_epoch: 0,
        };
        svm.set_account(&programdata, placeholder)
            .map_err(|e| format!("ProgramData account {programdata}: {e}"))
    })
}

/// Bytes of program data one `Write` transaction carries when `payer`
/// (also the buffer authority) signs alone: the largest chunk whose
/// transaction fits [`PACKET_DATA_SIZE`].
pub fn write_chunk_len(payer: &Pubkey, buffer: &Pubkey, authority: &Pubkey) -> usize {
    let size = |n: usize| {
        let ix = write(buffer, authority, 0, vec![0u8; n]);
        let tx = Transaction::new_with_payer(&[ix], Some(payer));
        let signatures = tx.message.header.num_required_signatures as usize;
        1 + 64 * signatures + tx.message.serialize().len()
    };
    // The instruction's length prefix grows with the chunk; search down.
    let mut n = PACKET_DATA_SIZE.saturating_sub(size(0));
    while n > 0 && size(n) > PACKET_DATA_SIZE {
        n -= 1;
    }
    n
}

/// Creates a buffer, writes `elf` into it and upgrades `program_id` from
/// it, over JSON-RPC; `authority` (the ProgramData's upgrade authority)
/// pays and signs everything. Then reads the deployed bytes back.
pub(crate) async fn deploy_through_loader(
    client: &RpcClient,
    program_id: Pubkey,
    authority: &Keypair,
    elf: &[u8],
) -> Result<ProgramDeploy, LocalnetError> {
    let started = Instant::now();
    let buffer = Keypair::new();
    let rent = client
        .get_minimum_balance_for_rent_exemption(UpgradeableLoaderState::size_of_buffer(elf.len()))
        .await?;
    let create = create_buffer(
        &authority.pubkey(),
        &buffer.pubkey(),
        &authority.pubkey(),
        rent,
        elf.len(),
    )
    .map_err(|e| LocalnetError::Deploy(format!("building the buffer's creation: {e}")))?;
    send_and_confirm(
        client,
        &[sign(client, &create, authority, &[&buffer]).await?],
    )
    .await?;

    let chunk_len = write_chunk_len(&authority.pubkey(), &buffer.pubkey(), &authority.pubkey());
    if chunk_len == 0 {
        return Err(LocalnetError::Deploy("no room for a write chunk".into()));
    }
    let chunks: Vec<(usize, &[u8])> = elf
        .chunks(chunk_len)
        .enumerate()
        .map(|(i, c)| (i * chunk_len, c))
        .collect();
    for batch in chunks.chunks(WRITE_BATCH) {
        let blockhash = client.get_latest_blockhash().await?;
        let mut txs = Vec::with_capacity(batch.len());
        for (offset, bytes) in batch {
            let offset = u32::try_from(*offset)
                .map_err(|_| LocalnetError::Deploy(format!("offset {offset} overflows u32")))?;
            let ix = write(
                &buffer.pubkey(),
                &authority.pubkey(),
                offset,
                bytes.to_vec(),
            );
            let mut tx = Transaction::new_with_payer(&[ix], Some(&authority.pubkey()));
            tx.try_sign(&[authority], blockhash)?;
            txs.push(tx);
        }
        send_and_confirm(client, &txs).await?;
    }

    let upgrade = upgrade(
        &program_id,
        &buffer.pubkey(),
        &authority.pubkey(),
        &authority.pubkey(),
    );
    send_and_confirm(client, &[sign(client, &[upgrade], authority, &[]).await?]).await?;
    let elapsed = started.elapsed();

    // Read back what runs: Program → ProgramData → the bytes after the header.
    let programdata = get_program_data_address(&program_id);
    let account = client.get_account(&programdata).await?;
    let deployed = programdata_executable(&account.data).ok_or_else(|| {
        LocalnetError::Deploy(format!("{programdata} is not a ProgramData account"))
    })?;
    let sha256 = executable_sha256(deployed);
    if sha256 != executable_sha256(elf) {
        return Err(LocalnetError::Deploy(format!(
            "the deployed bytes ({} bytes, sha256 {}) differ from the .so ({} bytes, sha256 {})",
            deployed.len(),
            hex(&sha256),
            elf.len(),
            hex(&executable_sha256(elf))
        )));
    }
    let deployed_slot = account
        .data
        .get(4..12)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or_default();
    Ok(ProgramDeploy {
        program_len: elf.len(),
        chunk_len,
        transactions: chunks.len() + 2,
        write_transactions: chunks.len(),
        elapsed,
        deployed_slot,
        sha256,
    })
}

async fn sign(
    client: &RpcClient,
    instructions: &[paychan_sdk::Instruction],
    payer: &Keypair,
    signers: &[&Keypair],
) -> Result<Transaction, LocalnetError> {
    let blockhash = client.get_latest_blockhash().await?;
    let mut tx = Transaction::new_with_payer(instructions, Some(&payer.pubkey()));
    let mut all: Vec<&Keypair> = vec![payer];
    all.extend_from_slice(signers);
    tx.try_sign(&all, blockhash)?;
    Ok(tx)
}

/// Sends `txs` (preflight skipped: the statuses tell) and polls until every
/// one is confirmed; the first failure is an error.
async fn send_and_confirm(client: &RpcClient, txs: &[Transaction]) -> Result<(), LocalnetError> {
    let config = RpcSendTransactionConfig {
        skip_preflight: true,
        ..RpcSendTransactionConfig::default()
    };
    // Sent concurrently: surfpool runs them one by one, but the HTTP round
    // trips overlap.
    let sender = Arc::new(RpcClient::new(client.url()));
    let mut sends = tokio::task::JoinSet::new();
    for (i, tx) in txs.iter().enumerate() {
        let (tx, sender) = (tx.clone(), sender.clone());
        sends.spawn(async move { (i, sender.send_transaction_with_config(&tx, config).await) });
    }
    let mut signatures = vec![solana_signature::Signature::default(); txs.len()];
    while let Some(joined) = sends.join_next().await {
        let (i, sent) = joined.map_err(|e| LocalnetError::Deploy(format!("a send task: {e}")))?;
        if let Some(slot) = signatures.get_mut(i) {
            *slot = sent?;
        }
    }
    let sent = Instant::now();
    let mut pending = signatures;
    while !pending.is_empty() {
        let statuses = client
            .get_signature_statuses(&pending)
            .await?
            .value
            .into_iter();
        let mut still = Vec::new();
        for (signature, status) in pending.iter().zip(statuses) {
            match status {
                Some(s) if s.err.is_some() => {
                    return Err(LocalnetError::Deploy(format!(
                        "transaction {signature} failed: {:?}",
                        s.err
                    )));
                }
                Some(s) if s.satisfies_commitment(client.commitment()) => {}
                _ => still.push(*signature),
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if sent.elapsed() >= CONFIRM_TIMEOUT {
            return Err(LocalnetError::Deploy(format!(
                "{} loader transactions not confirmed within {CONFIRM_TIMEOUT:?}",
                pending.len()
            )));
        }
        tokio::time::sleep(CONFIRM_POLL_INTERVAL).await;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn programdata_bytes_exclude_the_header_and_the_zero_padding() {
        let mut data = vec![3, 0, 0, 0];
        data.resize(PROGRAMDATA_HEADER_LEN, 7);
        data.extend_from_slice(&[1, 0, 2, 0, 0, 0]);
        assert_eq!(programdata_executable(&data), Some(&[1u8, 0, 2][..]));
        assert_eq!(
            executable_sha256(&[1, 0, 2, 0]),
            executable_sha256(&[1, 0, 2])
        );
        assert_ne!(executable_sha256(&[1, 0, 2]), executable_sha256(&[1, 0, 3]));
        // Not a ProgramData account: a Buffer's tag, or too short.
        data[0] = 1;
        assert_eq!(programdata_executable(&data), None);
        assert_eq!(programdata_executable(&[3, 0, 0, 0]), None);
        assert_eq!(trim_trailing_zeros(&[0, 0]), &[] as &[u8]);
    }

    #[test]
    fn a_full_write_transaction_fits_one_packet() {
        let (payer, buffer) = (Pubkey::new_unique(), Pubkey::new_unique());
        let n = write_chunk_len(&payer, &buffer, &payer);
        assert!(n > 900, "{n}");
        let size = |n: usize| {
            let ix = write(&buffer, &payer, 0, vec![0u8; n]);
            let tx = Transaction::new_with_payer(&[ix], Some(&payer));
            1 + 64 + tx.message.serialize().len()
        };
        assert!(size(n) <= PACKET_DATA_SIZE);
        assert!(size(n + 1) > PACKET_DATA_SIZE);
    }
}
