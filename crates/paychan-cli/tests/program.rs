//! `paychan program deploy | upgrade | show`, run as a process against the
//! embedded chain: a resumed buffer, the loader's deploy, the hash of the
//! deployed bytes, an upgrade of the chain's own paychan program, and the
//! refusals (wrong SBPF version, oversized, existing program, mismatch).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Paychan, SOL, chain_and_home, write_keypair};
use std::path::PathBuf;

use paychan_localnet::{LocalChainConfig, deploy::hex};
use sha2::{Digest, Sha256};
use solana_keypair::Keypair;
use solana_loader_v3_interface::instruction::{create_buffer, write};
use solana_signer::Signer;

fn so_path() -> PathBuf {
    LocalChainConfig::default().program_so
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_deploy_resumes_its_buffer_shows_the_hash_and_upgrades() {
    let (chain, dir) = chain_and_home().await;
    let home = dir.path();
    let so = so_path();
    let elf = std::fs::read(&so).unwrap();
    let sha = hex(&Sha256::digest(&elf));

    let payer = Keypair::new();
    let payer_file = home.join("payer.json");
    write_keypair(&payer_file, &payer);
    chain.fund_sol(&payer.pubkey(), 100 * SOL).await.unwrap();
    let program = Keypair::new();
    let program_file = home.join("program.json");
    write_keypair(&program_file, &program);
    let buffer = Keypair::new();
    let buffer_file = home.join("buffer.json");
    write_keypair(&buffer_file, &buffer);
    let (rpc, payer_s, so_s) = (
        chain.rpc_url(),
        payer_file.to_str().unwrap(),
        so.to_str().unwrap(),
    );
    let payer_cli = Paychan::new(home, &["--rpc-url", rpc, "--keypair", payer_s, "--json"]);

    // An interrupted upload: the buffer exists and holds the first 10
    // chunks, the 3rd of them with wrong bytes (written by the payer, its
    // authority, through the loader).
    let chunk = paychan_cli::commands::program::write_chunk_len(
        &payer.pubkey(),
        &buffer.pubkey(),
        &payer.pubkey(),
    );
    let rent = chain
        .rpc_client()
        .get_minimum_balance_for_rent_exemption(37 + elf.len())
        .await
        .unwrap();
    let create = create_buffer(
        &payer.pubkey(),
        &buffer.pubkey(),
        &payer.pubkey(),
        rent,
        elf.len(),
    )
    .unwrap();
    chain.send(&create, &payer, &[&buffer]).await.unwrap();
    for i in 0..10 {
        let mut bytes = elf[i * chunk..(i + 1) * chunk].to_vec();
        if i == 2 {
            bytes[7] ^= 0xff;
        }
        let ix = write(&buffer.pubkey(), &payer.pubkey(), (i * chunk) as u32, bytes);
        chain.send(&[ix], &payer, &[]).await.unwrap();
    }
    let total_chunks = elf.len().div_ceil(chunk);
    // Zero chunks of the .so are right in a fresh buffer already.
    let zero_chunks = elf[10 * chunk..]
        .chunks(chunk)
        .filter(|c| c.iter().all(|b| *b == 0))
        .count();

    // Refusals first: nothing is sent.
    let v0 = home.join("v0.so");
    let mut bytes = elf.clone();
    bytes[48..52].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&v0, &bytes).unwrap();
    let program_s = program_file.to_str().unwrap();
    let deploy = "program deploy {} --program-keypair {}";
    let bad = payer_cli
        .run(deploy, &[v0.to_str().unwrap(), program_s])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("SBPF v0"), "{bad:?}");
    let small = (elf.len() - 1).to_string();
    let too_long = "program deploy {} --program-keypair {} --max-len {}";
    let bad = payer_cli.run(too_long, &[so_s, program_s, &small]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--max-len"), "{bad:?}");
    let not_elf = home.join("not.so");
    std::fs::write(&not_elf, b"#!/bin/sh\necho hi\n").unwrap();
    let bad = payer_cli
        .run("program show --so {}", &[not_elf.to_str().unwrap()])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(!chain.exists(&program.pubkey()).await.unwrap());

    // The deploy resumes the buffer: only the wrong and missing chunks are written.
    let max_len = (elf.len() + 4096).to_string();
    let resume = "program deploy {} --program-keypair {} --buffer {} --max-len {}";
    let buffer_s = buffer_file.to_str().unwrap();
    let deployed = payer_cli
        .json(resume, &[so_s, program_s, buffer_s, &max_len])
        .await;
    assert_eq!(deployed["program_id"], program.pubkey().to_string());
    assert_eq!(deployed["upgrade_authority"], payer.pubkey().to_string());
    assert_eq!(deployed["sha256"], sha, "{deployed}");
    assert_eq!(deployed["local"]["sha256"], sha);
    assert_eq!(deployed["executable_len"], elf.len());
    assert_eq!(deployed["programdata_capacity"], elf.len() + 4096);
    assert_eq!(deployed["chunks"]["total"], total_chunks);
    assert_eq!(deployed["chunks"]["bytes_each"], chunk);
    assert_eq!(
        deployed["chunks"]["already_on_chain"],
        9 + zero_chunks,
        "{deployed}"
    );
    assert_eq!(
        deployed["chunks"]["written"],
        total_chunks - 9 - zero_chunks,
        "{deployed}"
    );
    assert_eq!(deployed["action"], "deploy");
    assert_eq!(deployed["transactions"]["create_buffer"], 0);
    assert_eq!(deployed["transactions"]["deploy"], 1);
    assert_eq!(
        deployed["transactions"]["total"],
        deployed["transactions"]["write"].as_u64().unwrap() + 1
    );
    // The buffer was consumed by the deploy.
    assert!(!chain.exists(&buffer.pubkey()).await.unwrap());

    // show reads the same back, for anyone; --so compares with a local file.
    let program_id = program.pubkey().to_string();
    let show = "program show {} --so {}";
    let shown = payer_cli.json(show, &[&program_id, so_s]).await;
    assert_eq!(shown["sha256"], sha);
    assert_eq!(shown["local"]["matches"], true);
    let slot = shown["last_deployed_slot"].as_u64().unwrap();
    assert!(slot > 0);
    let mut other = elf.clone();
    *other.last_mut().unwrap() ^= 0x01;
    let other_so = home.join("other.so");
    std::fs::write(&other_so, &other).unwrap();
    let other_s = other_so.to_str().unwrap();
    let differ = payer_cli.run(show, &[&program_id, other_s]).await;
    assert_eq!(differ.code, 4, "{differ:?}");
    assert!(differ.stderr.contains("differ"), "{differ:?}");

    // A second deploy at the same id is refused.
    let again = payer_cli.run(deploy, &[so_s, program_s]).await;
    assert_eq!(again.code, 4, "{again:?}");
    assert!(again.stderr.contains("upgrade"), "{again:?}");

    // Upgrade the chain's own paychan program (at the declared id) with its
    // local upgrade authority: a fresh buffer, writes, Upgrade.
    let authority_file = home.join("authority.json");
    write_keypair(&authority_file, chain.program_upgrade_authority());
    let before = chain.program_deploy().unwrap().deployed_slot;
    let upgrade = "program upgrade {} --upgrade-authority {}";
    let authority_s = authority_file.to_str().unwrap();
    let upgraded = payer_cli.json(upgrade, &[so_s, authority_s]).await;
    assert_eq!(upgraded["program_id"], paychan_sdk::ID.to_string());
    assert_eq!(upgraded["sha256"], sha);
    assert_eq!(upgraded["transactions"]["create_buffer"], 1);
    assert_eq!(upgraded["transactions"]["upgrade"], 1);
    assert_eq!(
        upgraded["chunks"]["written"],
        upgraded["transactions"]["write"]
    );
    assert!(upgraded["last_deployed_slot"].as_u64().unwrap() > before);
    // Without the authority: refused before anything is sent.
    let wrong = payer_cli.run("program upgrade {}", &[so_s]).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(wrong.stderr.contains("upgrade authority"), "{wrong:?}");

    // The human form names the hash.
    let table = Paychan::new(home, &["--rpc-url", rpc])
        .run("program show", &[])
        .await
        .ok();
    assert!(table.stdout.contains(&sha), "{table:?}");
    assert!(
        table
            .stdout
            .contains(&chain.program_upgrade_authority().pubkey().to_string()),
        "{table:?}"
    );
    chain.shutdown().unwrap();
}
