//! Shared fixtures: a LiteSVM chain running the real `paychan.so`, the real
//! SPL Token / Token-2022 programs and the Ed25519 precompile; builders for
//! every instruction; assertions on typed errors.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use anchor_lang::{
    AccountDeserialize,
    prelude::{Clock, Pubkey},
    solana_program::{instruction::Instruction, program_pack::Pack},
};
use anchor_spl::token::spl_token;
use ed25519_dalek::SigningKey;
use litesvm::{
    LiteSVM,
    types::{FailedTransactionMetadata, TransactionMetadata},
};
use paychan::{
    error::PaychanError,
    state::{Channel, PayeeVault},
};
use paychan_sdk::ix::OpenArgs;
use paychan_voucher::{ED25519_PROGRAM_ID, SignedVoucher, VoucherV1, sign_v1};
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_message::{Message, VersionedMessage, v0};
use solana_signer::Signer;
use solana_transaction::{Transaction, versioned::VersionedTransaction};
use solana_transaction_error::TransactionError;

pub use paychan_sdk::pda::{
    channel as channel_address, vault as vault_address, vault_tokens as vault_tokens_address,
};

pub type TxResult = Result<TransactionMetadata, FailedTransactionMetadata>;

pub const LAMPORTS: u64 = 10_000_000_000;
pub const DECIMALS: u8 = 6;
pub const GRACE: i64 = 3_600;
/// Unix time the chain starts at in every test.
pub const START_TIME: i64 = 1_800_000_000;
/// Slot the chain starts at (well past the open-slot window).
pub const START_SLOT: u64 = 10_000;

pub fn ed25519_program_id() -> Pubkey {
    Pubkey::new_from_array(ED25519_PROGRAM_ID)
}

/// The program binary under test: `$PAYCHAN_SO` or `target/deploy/paychan.so`.
pub fn program_path() -> PathBuf {
    if let Ok(p) = std::env::var("PAYCHAN_SO") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/deploy/paychan.so")
}

/// A test chain with one mint.
pub struct Harness {
    pub svm: LiteSVM,
    pub mint: Pubkey,
    pub token_program: Pubkey,
    /// Pays transaction fees in tests that do not care who does.
    pub fee_payer: Keypair,
}

impl Harness {
    /// A chain with an SPL Token mint.
    pub fn new() -> Self {
        Self::with_token_program(spl_token::ID)
    }

    /// A chain with a mint owned by `token_program` (SPL Token or Token-2022, no extensions).
    pub fn with_token_program(token_program: Pubkey) -> Self {
        let path = program_path();
        let so = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the program binary {}: {e}. Build it with scripts/build-sbf.sh",
                path.display()
            )
        });
        let mut svm = LiteSVM::new();
        svm.add_program(paychan::ID, &so).expect("load paychan.so");
        let fee_payer = Keypair::new();
        svm.airdrop(&fee_payer.pubkey(), LAMPORTS).unwrap();
        let mut h = Self {
            svm,
            mint: Pubkey::default(),
            token_program,
            fee_payer,
        };
        h.set_clock(START_SLOT, START_TIME);
        h.mint = h.create_mint(token_program);
        h
    }

    pub fn clock(&self) -> Clock {
        self.svm.get_sysvar::<Clock>()
    }

    pub fn set_clock(&mut self, slot: u64, unix_timestamp: i64) {
        let mut clock = self.svm.get_sysvar::<Clock>();
        clock.slot = slot;
        clock.unix_timestamp = unix_timestamp;
        self.svm.set_sysvar(&clock);
        self.svm.expire_blockhash();
    }

    /// Moves the clock forward by `secs` seconds and `slots` slots.
    pub fn advance(&mut self, slots: u64, secs: i64) {
        let c = self.clock();
        self.set_clock(c.slot + slots, c.unix_timestamp + secs);
    }

    pub fn funded(&mut self) -> Keypair {
        let k = Keypair::new();
        self.svm.airdrop(&k.pubkey(), LAMPORTS).unwrap();
        k
    }

    pub fn create_mint(&mut self, token_program: Pubkey) -> Pubkey {
        let mint = Pubkey::new_unique();
        let mut data = vec![0u8; spl_token::state::Mint::LEN];
        let state = spl_token::state::Mint {
            mint_authority: Some(Pubkey::new_unique()).into(),
            supply: u64::MAX / 2,
            decimals: DECIMALS,
            is_initialized: true,
            freeze_authority: None.into(),
        };
        spl_token::state::Mint::pack(state, &mut data).unwrap();
        self.set_raw_account(mint, token_program, data);
        mint
    }

    pub fn set_raw_account(&mut self, address: Pubkey, owner: Pubkey, data: Vec<u8>) {
        let lamports = self.svm.minimum_balance_for_rent_exemption(data.len());
        self.svm
            .set_account(
                address,
                solana_account::Account {
                    lamports,
                    data,
                    owner,
                    executable: false,
                    rent_epoch: 0,
                },
            )
            .unwrap();
    }

    /// A token account of `owner` in this harness's mint holding `amount`.
    pub fn token_account(&mut self, owner: &Pubkey, amount: u64) -> Pubkey {
        self.token_account_for(self.mint, self.token_program, owner, amount)
    }

    pub fn token_account_for(
        &mut self,
        mint: Pubkey,
        token_program: Pubkey,
        owner: &Pubkey,
        amount: u64,
    ) -> Pubkey {
        let address = Pubkey::new_unique();
        self.token_account_at(address, mint, token_program, owner, amount);
        address
    }

    /// Writes a token account of `owner` in `mint` at `address`.
    pub fn token_account_at(
        &mut self,
        address: Pubkey,
        mint: Pubkey,
        token_program: Pubkey,
        owner: &Pubkey,
        amount: u64,
    ) {
        let mut data = vec![0u8; spl_token::state::Account::LEN];
        let state = spl_token::state::Account {
            mint,
            owner: *owner,
            amount,
            delegate: None.into(),
            state: spl_token::state::AccountState::Initialized,
            is_native: None.into(),
            delegated_amount: 0,
            close_authority: None.into(),
        };
        spl_token::state::Account::pack(state, &mut data).unwrap();
        self.set_raw_account(address, token_program, data);
    }

    /// The payee's payout account (its associated token account in this
    /// harness's mint, the only account `settle` and `close` pay) holding `amount`.
    pub fn payout_account(&mut self, payee: &Pubkey, amount: u64) -> Pubkey {
        let address = paychan_sdk::pda::payout(payee, &self.mint, &self.token_program);
        self.token_account_at(address, self.mint, self.token_program, payee, amount);
        address
    }

    /// Token balance of a token account (SPL Token or Token-2022 layout).
    pub fn balance(&self, account: &Pubkey) -> u64 {
        let acc = self.svm.get_account(account).expect("token account exists");
        spl_token::state::Account::unpack_from_slice(&acc.data[..spl_token::state::Account::LEN])
            .expect("token account state")
            .amount
    }

    pub fn lamports(&self, account: &Pubkey) -> u64 {
        self.svm.get_account(account).map_or(0, |a| a.lamports)
    }

    pub fn exists(&self, account: &Pubkey) -> bool {
        self.svm
            .get_account(account)
            .is_some_and(|a| a.lamports > 0 || !a.data.is_empty())
    }

    pub fn channel(&self, address: &Pubkey) -> Channel {
        let acc = self.svm.get_account(address).expect("channel exists");
        assert_eq!(acc.owner, paychan::ID);
        assert_eq!(acc.data.len(), 8 + Channel::LEN);
        *bytemuck::from_bytes::<Channel>(&acc.data[8..])
    }

    pub fn vault(&self, address: &Pubkey) -> PayeeVault {
        let acc = self.svm.get_account(address).expect("vault exists");
        PayeeVault::try_deserialize(&mut acc.data.as_slice()).expect("vault state")
    }

    /// Sends a legacy transaction; the first signer pays the fee.
    pub fn send(&mut self, ixs: &[Instruction], signers: &[&Keypair]) -> TxResult {
        let payer = signers
            .first()
            .map_or(self.fee_payer.pubkey(), |k| k.pubkey());
        let msg = Message::new_with_blockhash(ixs, Some(&payer), &self.svm.latest_blockhash());
        let tx = Transaction::new(signers, msg, self.svm.latest_blockhash());
        let res = self.svm.send_transaction(tx);
        // A fresh blockhash per transaction, so identical retries are new transactions.
        self.svm.expire_blockhash();
        res
    }

    /// Sends with the harness's fee payer plus `signers`.
    pub fn send_as(&mut self, ixs: &[Instruction], signers: &[&Keypair]) -> TxResult {
        let fee_payer = self.fee_payer.insecure_clone();
        let mut all = vec![&fee_payer];
        all.extend_from_slice(signers);
        self.send(ixs, &all)
    }

    /// Sends a v0 transaction with the given lookup tables.
    pub fn send_v0(
        &mut self,
        ixs: &[Instruction],
        signers: &[&Keypair],
        tables: &[solana_message::AddressLookupTableAccount],
    ) -> TxResult {
        let tx = self.v0_tx(ixs, signers, tables);
        let res = self.svm.send_transaction(tx);
        self.svm.expire_blockhash();
        res
    }

    pub fn v0_tx(
        &self,
        ixs: &[Instruction],
        signers: &[&Keypair],
        tables: &[solana_message::AddressLookupTableAccount],
    ) -> VersionedTransaction {
        let payer = signers[0].pubkey();
        let msg = v0::Message::try_compile(&payer, ixs, tables, self.svm.latest_blockhash())
            .expect("compile v0 message");
        VersionedTransaction::try_new(VersionedMessage::V0(msg), signers).expect("sign v0")
    }
}

/// Everything about one channel a test needs.
pub struct Chan {
    pub payer: Keypair,
    pub payee: Pubkey,
    pub signer: SigningKey,
    pub salt: u64,
    pub open_slot: u64,
    pub address: Pubkey,
    pub vault: Pubkey,
    pub vault_tokens: Pubkey,
    pub payer_tokens: Pubkey,
    pub mint: Pubkey,
    pub token_program: Pubkey,
}

impl Chan {
    pub fn signer_pubkey(&self) -> Pubkey {
        Pubkey::new_from_array(self.signer.verifying_key().to_bytes())
    }

    /// Signs a v1 voucher for this channel.
    pub fn voucher(&self, cumulative: u64, expires_at: i64) -> SignedVoucher {
        sign_v1(
            &self.signer,
            &VoucherV1 {
                channel_id: self.address.to_bytes(),
                cumulative_amount: cumulative,
                expires_at,
            },
        )
    }
}

pub fn new_signing_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// Parameters of `open` with everything else derived.
pub struct OpenParams {
    pub deposit: u64,
    pub salt: u64,
    pub open_slot: Option<u64>,
    pub grace_period: i64,
    pub payer_balance: u64,
}

impl Default for OpenParams {
    fn default() -> Self {
        Self {
            deposit: 1_000_000,
            salt: 7,
            open_slot: None,
            grace_period: GRACE,
            payer_balance: 10_000_000,
        }
    }
}

impl Harness {
    /// Prepares (but does not open) a channel from a new funded payer to `payee`.
    pub fn prepare(&mut self, payee: &Pubkey, p: &OpenParams) -> Chan {
        let payer = self.funded();
        let signer = new_signing_key();
        let open_slot = p.open_slot.unwrap_or(self.clock().slot);
        let signer_pk = Pubkey::new_from_array(signer.verifying_key().to_bytes());
        let address = channel_address(
            &payer.pubkey(),
            payee,
            &self.mint,
            &signer_pk,
            p.salt,
            open_slot,
        );
        let vault = vault_address(payee, &self.mint);
        let payer_tokens = self.token_account(&payer.pubkey(), p.payer_balance);
        Chan {
            payer,
            payee: *payee,
            signer,
            salt: p.salt,
            open_slot,
            address,
            vault,
            vault_tokens: vault_tokens_address(&vault),
            payer_tokens,
            mint: self.mint,
            token_program: self.token_program,
        }
    }

    /// Opens a channel with default parameters and asserts success.
    pub fn open_channel(&mut self, payee: &Pubkey, deposit: u64) -> Chan {
        let p = OpenParams {
            deposit,
            ..Default::default()
        };
        let chan = self.prepare(payee, &p);
        let ix = open_ix(&chan, &p);
        self.send(&[ix], &[&chan.payer]).expect("open succeeds");
        chan
    }
}

pub fn open_args(chan: &Chan, p: &OpenParams) -> OpenArgs {
    OpenArgs {
        salt: chan.salt,
        open_slot: chan.open_slot,
        deposit: p.deposit,
        grace_period: p.grace_period,
        authorized_signer: chan.signer_pubkey(),
    }
}

/// `open` with the payer also paying rent.
pub fn open_ix(chan: &Chan, p: &OpenParams) -> Instruction {
    open_ix_with(chan, open_args(chan, p), chan.payer.pubkey())
}

pub fn open_ix_with(chan: &Chan, args: OpenArgs, rent_payer: Pubkey) -> Instruction {
    let accounts = paychan_sdk::ix::OpenAccounts {
        payer: chan.payer.pubkey(),
        rent_payer,
        payee: chan.payee,
        mint: chan.mint,
        payer_tokens: chan.payer_tokens,
        token_program: chan.token_program,
    };
    let (mut ix, _) = paychan_sdk::ix::open(&accounts, args);
    // Tests may point a prepared channel at any address.
    ix.accounts[5].pubkey = chan.address;
    ix
}

pub fn top_up_ix(chan: &Chan, payer: &Pubkey, payer_tokens: &Pubkey, amount: u64) -> Instruction {
    paychan_sdk::ix::top_up(
        &chan.address,
        payer,
        payer_tokens,
        &chan.payee,
        &chan.mint,
        &chan.token_program,
        amount,
    )
}

pub use paychan_sdk::ix::SettleAccounts;

/// `SettleAccounts` of a test channel.
pub trait ForChan {
    /// The settle accounts of `chan`'s vault, paying `payee_tokens`.
    fn for_chan(chan: &Chan, payee_tokens: Pubkey) -> Self;
}

impl ForChan for SettleAccounts {
    fn for_chan(chan: &Chan, payee_tokens: Pubkey) -> Self {
        let mut a = SettleAccounts::new(&chan.payee, &chan.mint, chan.token_program);
        (a.vault, a.vault_tokens, a.payee_tokens) = (chan.vault, chan.vault_tokens, payee_tokens);
        a
    }
}

/// The Ed25519 precompile instruction for signed v1 vouchers (the one encoder).
pub fn ed25519_ix(vouchers: &[SignedVoucher]) -> Instruction {
    paychan_sdk::ix::ed25519_for_vouchers(vouchers).expect("1..=8 vouchers")
}

pub fn ed25519_ix_raw(data: Vec<u8>) -> Instruction {
    paychan_sdk::ix::ed25519(data)
}

/// `[ed25519, settle]` for vouchers of channels sharing one vault.
pub fn settle_ixs(accts: &SettleAccounts, vouchers: &[SignedVoucher]) -> Vec<Instruction> {
    paychan_sdk::ix::settle_with_vouchers(accts, vouchers).expect("1..=8 vouchers")
}

/// `[compute budget, settle_signed]` for vouchers of channels sharing one
/// vault (the SDK's builder: its compute-unit limit is part of what is tested).
pub fn settle_signed_ixs(accts: &SettleAccounts, vouchers: &[SignedVoucher]) -> Vec<Instruction> {
    paychan_sdk::ix::settle_signed_with_vouchers(accts, vouchers)
}

pub struct CloseAccounts {
    pub payee_tokens: Pubkey,
    pub payer_tokens: Pubkey,
    pub rent_payer: Pubkey,
}

pub fn close_ix(
    chan: &Chan,
    payee: &Pubkey,
    a: &CloseAccounts,
    with_final_voucher: bool,
) -> Instruction {
    let mut ix = paychan_sdk::ix::close(
        &channel_accounts(chan, &a.payer_tokens, &a.rent_payer),
        with_final_voucher,
    );
    // The signer may be anyone and the payout account any account (guard
    // tests); the vault is the test channel's.
    ix.accounts[0].pubkey = *payee;
    (ix.accounts[2].pubkey, ix.accounts[3].pubkey) = (chan.vault, chan.vault_tokens);
    ix.accounts[4].pubkey = a.payee_tokens;
    ix
}

/// The sdk's view of a test channel.
pub fn channel_accounts(
    chan: &Chan,
    payer_tokens: &Pubkey,
    rent_payer: &Pubkey,
) -> paychan_sdk::ix::ChannelAccounts {
    paychan_sdk::ix::ChannelAccounts {
        channel: chan.address,
        payee: chan.payee,
        mint: chan.mint,
        token_program: chan.token_program,
        payer_tokens: *payer_tokens,
        rent_payer: *rent_payer,
    }
}

pub fn request_close_ix(chan: &Chan, payer: &Pubkey) -> Instruction {
    paychan_sdk::ix::request_close(&chan.address, payer)
}

pub fn finalize_ix(chan: &Chan, payer_tokens: &Pubkey, rent_payer: &Pubkey) -> Instruction {
    let mut ix = paychan_sdk::ix::finalize(&channel_accounts(chan, payer_tokens, rent_payer));
    (ix.accounts[1].pubkey, ix.accounts[2].pubkey) = (chan.vault, chan.vault_tokens);
    ix
}

pub fn reclaim_ix(chan: &Chan, rent_payer: &Pubkey) -> Instruction {
    paychan_sdk::ix::reclaim(&chan.address, rent_payer)
}

/// The custom error code a failed transaction ended with, if any.
pub fn custom_code(res: &TxResult) -> Option<u32> {
    match res {
        Err(f) => match &f.err {
            TransactionError::InstructionError(_, InstructionError::Custom(c)) => Some(*c),
            _ => None,
        },
        Ok(_) => None,
    }
}

/// Asserts that the transaction failed with `err` from the program.
#[track_caller]
pub fn assert_err(res: &TxResult, err: PaychanError) {
    let expected = 6000 + err as u32;
    match res {
        Ok(meta) => panic!(
            "expected {err:?}, the transaction succeeded: {:#?}",
            meta.logs
        ),
        Err(f) => assert_eq!(
            custom_code(res),
            Some(expected),
            "expected {err:?} ({expected}), got {:?}\n{}",
            f.err,
            f.meta.logs.join("\n")
        ),
    }
}

/// Asserts that the transaction failed with an Anchor framework error.
#[track_caller]
pub fn assert_anchor_err(res: &TxResult, err: anchor_lang::error::ErrorCode) {
    let expected: u32 = err.into();
    match res {
        Ok(meta) => panic!(
            "expected {err:?}, the transaction succeeded: {:#?}",
            meta.logs
        ),
        Err(f) => assert_eq!(
            custom_code(res),
            Some(expected),
            "expected {err:?} ({expected}), got {:?}\n{}",
            f.err,
            f.meta.logs.join("\n")
        ),
    }
}

/// Asserts that the transaction failed with this exact transaction error.
#[track_caller]
pub fn assert_tx_err(res: &TxResult, expected: TransactionError) {
    match res {
        Ok(meta) => panic!(
            "expected {expected:?}, the transaction succeeded: {:#?}",
            meta.logs
        ),
        Err(f) => assert_eq!(f.err, expected, "{}", f.meta.logs.join("\n")),
    }
}

#[track_caller]
pub fn ok(res: TxResult) -> TransactionMetadata {
    match res {
        Ok(m) => {
            if std::env::var_os("PAYCHAN_LOGS").is_some() {
                println!("{}", m.logs.join("\n"));
            }
            m
        }
        Err(f) => panic!(
            "transaction failed: {:?}\n{}",
            f.err,
            f.meta.logs.join("\n")
        ),
    }
}

/// One open channel to a fresh payee plus the payee's token account.
pub fn settle_fixture(h: &mut Harness, deposit: u64) -> (Chan, SettleAccounts) {
    let payee = Pubkey::new_unique();
    let chan = h.open_channel(&payee, deposit);
    let payee_tokens = h.payout_account(&payee, 0);
    let accts = SettleAccounts::for_chan(&chan, payee_tokens);
    (chan, accts)
}

/// Index of the program's instruction-level error inside a failed transaction.
pub fn failed_instruction(res: &TxResult) -> Option<u8> {
    match res {
        Err(f) => match &f.err {
            TransactionError::InstructionError(i, _) => Some(*i),
            _ => None,
        },
        Ok(_) => None,
    }
}

impl Chan {
    /// A copy (keypairs included).
    pub fn clone_shallow(&self) -> Chan {
        Chan {
            payer: self.payer.insecure_clone(),
            payee: self.payee,
            signer: self.signer.clone(),
            salt: self.salt,
            open_slot: self.open_slot,
            address: self.address,
            vault: self.vault,
            vault_tokens: self.vault_tokens,
            payer_tokens: self.payer_tokens,
            mint: self.mint,
            token_program: self.token_program,
        }
    }
}

impl Harness {
    /// Opens a channel whose vouchers are signed by `signer`.
    pub fn open_channel_with_signer(
        &mut self,
        payee: &Pubkey,
        deposit: u64,
        signer: &SigningKey,
    ) -> Chan {
        let p = OpenParams {
            deposit,
            ..Default::default()
        };
        let mut chan = self.prepare(payee, &p);
        chan.signer = signer.clone();
        chan.address = channel_address(
            &chan.payer.pubkey(),
            payee,
            &chan.mint,
            &chan.signer_pubkey(),
            chan.salt,
            chan.open_slot,
        );
        let ix = open_ix(&chan, &p);
        self.send(&[ix], &[&chan.payer]).expect("open succeeds");
        chan
    }
}

/// The precompile instruction for one v2 message.
pub fn ed25519_v2_ix(signer: &SigningKey, message: &[u8], signature: &[u8; 64]) -> Instruction {
    let pubkey = signer.verifying_key().to_bytes();
    let data = paychan_voucher::ed25519_instruction_data(&[paychan_voucher::Ed25519Entry {
        pubkey: &pubkey,
        signature,
        message,
    }])
    .expect("one record");
    ed25519_ix_raw(data)
}

/// Signs a v2 batch voucher over `chans` (sorted here) with the given targets
/// (in the sorted order) and returns `[ed25519, settle_batch]`.
pub fn settle_batch_ixs(
    accts: &SettleAccounts,
    signer: &SigningKey,
    channels: &[Pubkey],
    targets: &[u64],
    expires_at: i64,
) -> Vec<Instruction> {
    let ids: Vec<[u8; 32]> = channels.iter().map(|c| c.to_bytes()).collect();
    let refs: Vec<&[u8; 32]> = ids.iter().collect();
    let hash = paychan_voucher::channels_hash(&paychan::ID.to_bytes(), &refs).expect("sorted ids");
    let (msg, sig) = paychan_voucher::sign_v2(signer, expires_at, &hash, targets).expect("sign v2");
    vec![
        ed25519_v2_ix(signer, &msg, &sig),
        accts.settle_batch_ix(channels),
    ]
}

/// Installs a lookup table holding `addresses` and returns its account form.
pub fn install_table(
    h: &mut Harness,
    addresses: Vec<Pubkey>,
) -> solana_message::AddressLookupTableAccount {
    let key = Pubkey::new_unique();
    let table = solana_address_lookup_table_interface::state::AddressLookupTable {
        meta: solana_address_lookup_table_interface::state::LookupTableMeta {
            authority: Some(h.fee_payer.pubkey()),
            ..Default::default()
        },
        addresses: std::borrow::Cow::Owned(addresses.clone()),
    };
    let data = table.serialize_for_tests().expect("table data");
    h.set_raw_account(
        key,
        solana_address_lookup_table_interface::program::ID,
        data,
    );
    solana_message::AddressLookupTableAccount { key, addresses }
}

impl Harness {
    /// The payer requests a close; asserts success.
    #[track_caller]
    pub fn request_close(&mut self, chan: &Chan) -> TransactionMetadata {
        let payer = chan.payer.insecure_clone();
        ok(self.send(&[request_close_ix(chan, &payer.pubkey())], &[&payer]))
    }
}

/// Every event of type `E` in the transaction logs (`Program data:` lines),
/// decoded with the IDL's Borsh layout.
pub fn events<E: anchor_lang::Event>(logs: &[String]) -> Vec<E> {
    use anchor_lang::__private::base64::{Engine, engine::general_purpose::STANDARD};
    logs.iter()
        .filter_map(|l| l.strip_prefix("Program data: "))
        .filter_map(|d| STANDARD.decode(d).ok())
        .filter_map(|bytes| {
            let mut body = bytes.strip_prefix(E::DISCRIMINATOR)?;
            E::deserialize(&mut body).ok()
        })
        .collect()
}

/// The first event of type `E` in the transaction logs.
pub fn event<E: anchor_lang::Event>(logs: &[String]) -> Option<E> {
    events(logs).into_iter().next()
}

impl Harness {
    /// Rewrites a vault in the version-1 layout, as the first program wrote
    /// it: the same fields up to `tokens_bump` (a prefix of the current Borsh
    /// encoding), nothing after, and the rent of that size.
    pub fn write_v1_vault(&mut self, vault: &Pubkey) {
        let acc = self.svm.get_account(vault).expect("vault exists");
        let len = 8 + paychan::state::VAULT_V1_LEN;
        let data = acc.data[..len].to_vec();
        self.set_raw_account(*vault, acc.owner, data);
    }

    /// Rewrites a channel's layout-version byte.
    pub fn set_channel_version(&mut self, channel: &Pubkey, version: u8) {
        let mut acc = self.svm.get_account(channel).expect("channel exists");
        let mut c: Channel = *bytemuck::from_bytes(&acc.data[8..]);
        c.version = version;
        acc.data[8..].copy_from_slice(bytemuck::bytes_of(&c));
        self.svm.set_account(*channel, acc).unwrap();
    }
}
