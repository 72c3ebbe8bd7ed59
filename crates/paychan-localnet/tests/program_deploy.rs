//! The program on the embedded chain went through the upgradeable loader:
//! read back over JSON-RPC, Program → ProgramData → the deployed bytes,
//! whose SHA-256 equals the local `.so`'s.
//!
//! Run with `-- --nocapture` to see the deploy's transactions and time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use paychan_localnet::{
    LocalChain, LocalChainConfig,
    deploy::{
        LOADER_V3_ID, PROGRAMDATA_HEADER_LEN, executable_sha256, hex, programdata_executable,
    },
};
use paychan_sdk::Pubkey;
use sha2::{Digest, Sha256};
use solana_signer::Signer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_is_deployed_through_the_loader_with_the_local_bytes() {
    let config = LocalChainConfig::default();
    let elf = std::fs::read(&config.program_so).expect("build the .so with scripts/build-sbf.sh");
    let chain = LocalChain::start(config).await.expect("the chain starts");
    let rpc = chain.rpc_client();

    // Program account: owned by loader v3, executable, pointing at its ProgramData.
    let program = chain.account(&chain.program_id()).await.unwrap();
    assert_eq!(program.owner, LOADER_V3_ID);
    assert!(program.executable);
    assert_eq!(program.data.len(), 36);
    assert_eq!(program.data[..4], 2u32.to_le_bytes(), "Program tag");
    let programdata = Pubkey::try_from(&program.data[4..36]).unwrap();
    let (expected, _) = Pubkey::find_program_address(&[chain.program_id().as_ref()], &LOADER_V3_ID);
    assert_eq!(programdata, expected);

    // ProgramData: written by the loader's Upgrade (slot > 0; the placeholder
    // said 0), with the chain's upgrade authority, holding the local bytes.
    let data = chain.account(&programdata).await.unwrap();
    assert_eq!(data.owner, LOADER_V3_ID);
    assert_eq!(data.data[..4], 3u32.to_le_bytes(), "ProgramData tag");
    let slot = u64::from_le_bytes(data.data[4..12].try_into().unwrap());
    assert!(
        slot > 0,
        "deployed by a transaction, not written at genesis"
    );
    assert_eq!(data.data[12], 1, "an upgrade authority");
    assert_eq!(
        Pubkey::try_from(&data.data[13..45]).unwrap(),
        chain.program_upgrade_authority().pubkey()
    );
    assert_eq!(data.data.len(), PROGRAMDATA_HEADER_LEN + elf.len());
    let deployed = programdata_executable(&data.data).unwrap();
    assert_eq!(deployed.len(), elf.len(), "the .so has no trailing zeros");
    let local: [u8; 32] = Sha256::digest(&elf).into();
    assert_eq!(hex(&executable_sha256(deployed)), hex(&local));

    let deploy = chain.program_deploy().unwrap();
    assert_eq!(deploy.sha256, local);
    assert_eq!(deploy.deployed_slot, slot);
    assert_eq!(deploy.program_len, elf.len());
    assert_eq!(
        deploy.write_transactions,
        elf.len().div_ceil(deploy.chunk_len)
    );
    assert_eq!(deploy.transactions, deploy.write_transactions + 2);

    // The Upgrade is on chain: the ProgramData's history holds it and the
    // buffer's creation and writes (loader-signed transactions, one each).
    let signatures = rpc.get_signatures_for_address(&programdata).await.unwrap();
    assert!(!signatures.is_empty());
    assert!(signatures.iter().all(|s| s.err.is_none()));
    println!(
        "loader deploy: {} bytes in {} transactions ({} writes of ≤ {} bytes) in {:.2} s; chain start {:.2} s; sha256 {}",
        deploy.program_len,
        deploy.transactions,
        deploy.write_transactions,
        deploy.chunk_len,
        deploy.elapsed.as_secs_f64(),
        chain.startup_time().as_secs_f64(),
        hex(&deploy.sha256),
    );
    chain.shutdown().unwrap();
}
