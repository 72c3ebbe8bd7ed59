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
        self.voucher_as(&self.address, cumulative, expires_at)
    }

    /// Signs, with this channel's key, a v1 voucher naming `channel` (any account).
    pub fn voucher_as(&self, channel: &Pubkey, cumulative: u64, expires_at: i64) -> SignedVoucher {
        sign_v1(
            &self.signer,
            &VoucherV1 {
                channel_id: channel.to_bytes(),
                cumulative_amount: cumulative,
                expires_at,
            },
        )
    }

    /// This channel's voucher (no expiry) signed by a fresh key instead of its signer.
    pub fn forged_voucher(&self, cumulative: u64) -> SignedVoucher {
        sign_v1(&new_signing_key(), &self.voucher(cumulative, 0).voucher)
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

    /// Prepares a channel to `payee` with `p` and sends its `open` (the payer
    /// signs and pays the fee and the rent).
    pub fn try_open(&mut self, payee: &Pubkey, p: &OpenParams) -> (Chan, TxResult) {
        let chan = self.prepare(payee, p);
        let res = self.send(&[open_ix(&chan, p)], &[&chan.payer]);
        (chan, res)
    }

    /// Opens a channel to `payee` (default parameters) whose rent a separate,
    /// new rent payer pays; asserts success.
    pub fn open_with_rent_payer(&mut self, payee: &Pubkey) -> (Chan, Keypair) {
        let p = OpenParams::default();
        let chan = self.prepare(payee, &p);
        let rent_payer = self.funded();
        let ix = open_ix_with(&chan, open_args(&chan, &p), rent_payer.pubkey());
        ok(self.send(&[ix], &[&rent_payer, &chan.payer]));
        (chan, rent_payer)
    }

    /// Opens a channel with default parameters and asserts success.
    pub fn open_channel(&mut self, payee: &Pubkey, deposit: u64) -> Chan {
        let p = OpenParams {
            deposit,
            ..Default::default()
        };
        let (chan, res) = self.try_open(payee, &p);
        res.expect("open succeeds");
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

/// Asserts that the transaction failed with custom error `expected` (`what` names it).
#[track_caller]
fn assert_custom(res: &TxResult, expected: u32, what: &dyn std::fmt::Debug) {
    match res {
        Ok(meta) => panic!(
            "expected {what:?}, the transaction succeeded: {:#?}",
            meta.logs
        ),
        Err(f) => assert_eq!(
            custom_code(res),
            Some(expected),
            "expected {what:?} ({expected}), got {:?}\n{}",
            f.err,
            f.meta.logs.join("\n")
        ),
    }
}

/// Asserts that the transaction failed with `err` from the program.
#[track_caller]
pub fn assert_err(res: &TxResult, err: PaychanError) {
    assert_custom(res, 6000 + err as u32, &err);
}

/// Asserts that the transaction failed with an Anchor framework error.
#[track_caller]
pub fn assert_anchor_err(res: &TxResult, err: anchor_lang::error::ErrorCode) {
    assert_custom(res, err.into(), &err);
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

/// Asserts `chan` is Closed with `settled` paid out and `refunded` refunded.
#[track_caller]
pub fn assert_closed(h: &Harness, chan: &Chan, settled: u64, refunded: u64) {
    let c = h.channel(&chan.address);
    assert_eq!(c.status, paychan::state::ChannelStatus::Closed as u8);
    assert_eq!((c.settled, c.refunded), (settled, refunded));
}

/// Asserts `chan` (holding `deposit`, its vault holding nothing else, its
/// payer funded with the default balance) is Closed with `settled` paid to
/// `payee_tokens` and the rest refunded.
#[track_caller]
pub fn assert_paid_and_refunded(
    h: &Harness,
    chan: &Chan,
    payee_tokens: &Pubkey,
    settled: u64,
    deposit: u64,
) {
    assert_eq!(h.balance(payee_tokens), settled);
    let payer_balance = OpenParams::default().payer_balance;
    assert_eq!(h.balance(&chan.payer_tokens), payer_balance - settled);
    assert_eq!(h.balance(&chan.vault_tokens), 0);
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
    assert_closed(h, chan, settled, deposit - settled);
}

/// A new chain with one open channel (`settle_fixture`).
pub fn fresh_channel(deposit: u64) -> (Harness, Chan, SettleAccounts) {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, deposit);
    (h, chan, accts)
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

/// `#[test] fn name() { body; }` for each `name => body;`: a table of cases,
/// each its own test under its own name.
#[allow(unused_macros)]
macro_rules! cases {
    ($($name:ident => $body:expr;)+) => {
        $(
            #[test]
            fn $name() {
                $body;
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use cases;

/// The fee the harness's fee payer paid for `send`.
pub fn fee_of(h: &mut Harness, send: impl FnOnce(&mut Harness) -> TxResult) -> (TxResult, u64) {
    let payer = h.fee_payer.pubkey();
    let before = h.lamports(&payer);
    let res = send(h);
    (res, before - h.lamports(&payer))
}

/// Token program invocations (each one a `transfer_checked` CPI) in a transaction.
pub fn transfers(meta: &TransactionMetadata, token_program: &Pubkey) -> usize {
    let invoke = format!("Program {token_program} invoke");
    meta.logs.iter().filter(|l| l.starts_with(&invoke)).count()
}

/// `(channel, settled, amount)` of every `ChannelSettled` event in the logs.
pub fn settled_events(meta: &TransactionMetadata) -> Vec<(Pubkey, u64, u64)> {
    events::<paychan::events::ChannelSettled>(&meta.logs)
        .iter()
        .map(|e| (e.channel, e.settled, e.amount))
        .collect()
}

/// Which instruction settles v1 vouchers: `settle` (the Ed25519 precompile
/// verifies them) or `settle_signed` (the program verifies them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettleBy {
    Precompile,
    Program,
}

impl SettleBy {
    /// The SDK's `[ed25519, settle]` or `[compute budget, settle_signed]`.
    pub fn ixs(self, accts: &SettleAccounts, vouchers: &[SignedVoucher]) -> Vec<Instruction> {
        match self {
            Self::Precompile => settle_ixs(accts, vouchers),
            Self::Program => settle_signed_ixs(accts, vouchers),
        }
    }

    /// The instruction's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Precompile => "settle",
            Self::Program => "settle_signed",
        }
    }

    /// The error of a voucher signed by another key than the channel's signer.
    pub fn wrong_signer_error(self) -> PaychanError {
        match self {
            Self::Precompile => PaychanError::WrongSigner,
            Self::Program => PaychanError::InvalidSignature,
        }
    }
}

impl Harness {
    /// Settles `vouchers` by `by`, sent by the harness's fee payer.
    pub fn settle_by(
        &mut self,
        by: SettleBy,
        accts: &SettleAccounts,
        vouchers: &[SignedVoucher],
    ) -> TxResult {
        self.send_as(&by.ixs(accts, vouchers), &[])
    }

    /// `settle` (precompile) of `vouchers`; asserts success.
    #[track_caller]
    pub fn settle(
        &mut self,
        accts: &SettleAccounts,
        vouchers: &[SignedVoucher],
    ) -> TransactionMetadata {
        ok(self.settle_by(SettleBy::Precompile, accts, vouchers))
    }

    /// `settle_signed` of `vouchers`; asserts success.
    #[track_caller]
    pub fn settle_signed(
        &mut self,
        accts: &SettleAccounts,
        vouchers: &[SignedVoucher],
    ) -> TransactionMetadata {
        ok(self.settle_by(SettleBy::Program, accts, vouchers))
    }

    /// Asserts that settling `vouchers` by `by` fails with `err`.
    #[track_caller]
    pub fn assert_settle_err(
        &mut self,
        by: SettleBy,
        accts: &SettleAccounts,
        vouchers: &[SignedVoucher],
        err: PaychanError,
    ) {
        let res = self.settle_by(by, accts, vouchers);
        assert_err(&res, err);
    }

    /// Asserts that `settle` (precompile) of `vouchers` fails with `err`.
    #[track_caller]
    pub fn settle_err(&mut self, accts: &SettleAccounts, v: &[SignedVoucher], err: PaychanError) {
        self.assert_settle_err(SettleBy::Precompile, accts, v, err);
    }

    /// Asserts that `settle_signed` of `vouchers` fails with `err`.
    #[track_caller]
    pub fn settle_signed_err(
        &mut self,
        accts: &SettleAccounts,
        v: &[SignedVoucher],
        err: PaychanError,
    ) {
        self.assert_settle_err(SettleBy::Program, accts, v, err);
    }

    /// The payer finalizes `chan` (refund and rent back to the payer), sent
    /// by the harness's fee payer.
    pub fn finalize(&mut self, chan: &Chan) -> TxResult {
        let ix = finalize_ix(chan, &chan.payer_tokens, &chan.payer.pubkey());
        self.send_as(&[ix], &[])
    }

    /// The payee closes `chan` without a final voucher, paying `payee_tokens`.
    pub fn close_without_voucher(
        &mut self,
        chan: &Chan,
        payee: &Keypair,
        payee_tokens: Pubkey,
    ) -> TxResult {
        let a = CloseAccounts::of(chan, payee_tokens);
        self.send(&[close_ix(chan, &payee.pubkey(), &a, false)], &[payee])
    }

    /// The payee closes `chan` with the final voucher `v` (`[ed25519, close]`).
    pub fn close_with_voucher(
        &mut self,
        chan: &Chan,
        payee: &Keypair,
        a: &CloseAccounts,
        v: SignedVoucher,
    ) -> TxResult {
        let ixs = [ed25519_ix(&[v]), close_ix(chan, &payee.pubkey(), a, true)];
        self.send(&ixs, &[payee])
    }
}

impl CloseAccounts {
    /// Paying `payee_tokens`; the refund and the rent go back to the channel's payer.
    pub fn of(chan: &Chan, payee_tokens: Pubkey) -> Self {
        Self {
            payee_tokens,
            payer_tokens: chan.payer_tokens,
            rent_payer: chan.payer.pubkey(),
        }
    }
}

/// One open channel to a funded payee who can sign `close`.
pub struct PayeeFixture {
    pub chan: Chan,
    pub payee: Keypair,
    pub payee_tokens: Pubkey,
    pub accts: SettleAccounts,
}

pub fn payee_fixture(h: &mut Harness, deposit: u64) -> PayeeFixture {
    let payee = h.funded();
    let chan = h.open_channel(&payee.pubkey(), deposit);
    let payee_tokens = h.payout_account(&payee.pubkey(), 0);
    let accts = SettleAccounts::for_chan(&chan, payee_tokens);
    PayeeFixture {
        chan,
        payee,
        payee_tokens,
        accts,
    }
}

impl PayeeFixture {
    /// The payee closes the channel without a final voucher.
    pub fn close_without_voucher(&self, h: &mut Harness) -> TxResult {
        h.close_without_voucher(&self.chan, &self.payee, self.payee_tokens)
    }
}

/// `n` channels of different payers to one payee (channel `i` holding
/// `deposit(i)`) and the settle accounts of their shared vault.
pub fn channels_to_one_payee(
    h: &mut Harness,
    n: u64,
    deposit: impl Fn(u64) -> u64,
) -> (Vec<Chan>, SettleAccounts) {
    let payee = Pubkey::new_unique();
    let payee_tokens = h.payout_account(&payee, 0);
    let chans: Vec<Chan> = (0..n).map(|i| h.open_channel(&payee, deposit(i))).collect();
    let accts = SettleAccounts::for_chan(&chans[0], payee_tokens);
    (chans, accts)
}

/// A new chain with two channels (1,000 each) of different payers to one
/// payee, and their vault's settle accounts.
pub fn two_channels() -> (Harness, Chan, Chan, SettleAccounts) {
    let mut h = Harness::new();
    let (mut chans, accts) = channels_to_one_payee(&mut h, 2, |_| 1_000);
    let b = chans.pop().expect("two");
    let a = chans.pop().expect("two");
    (h, a, b, accts)
}

/// Channel `i` of `chans` settled to 100 · (i + 1).
pub fn hundreds(chans: &[Chan]) -> Vec<SignedVoucher> {
    chans
        .iter()
        .enumerate()
        .map(|(i, c)| c.voucher(100 * (i as u64 + 1), 0))
        .collect()
}

/// After channel 0 was settled to 50, then the `hundreds` of `chans`
/// (channel `i` holding `base + i`) in the one transaction `meta`: the payout,
/// every channel's watermark, what the vault owes, one token transfer and
/// the events in order.
#[track_caller]
pub fn assert_hundreds_paid_in_one_transfer(
    h: &Harness,
    accts: &SettleAccounts,
    chans: &[Chan],
    base: u64,
    meta: &TransactionMetadata,
) {
    let n = chans.len() as u64;
    let expected: u64 = (1..=n).map(|i| 100 * i).sum();
    assert_eq!(h.balance(&accts.payee_tokens), expected);
    for (i, c) in chans.iter().enumerate() {
        assert_eq!(h.channel(&c.address).settled, 100 * (i as u64 + 1));
    }
    let deposits: u64 = (0..n).map(|i| base + i).sum();
    assert_eq!(h.vault(&chans[0].vault).outstanding, deposits - expected);
    assert_eq!(
        transfers(meta, &anchor_spl::token::ID),
        1,
        "{:#?}",
        meta.logs
    );
    // One ChannelSettled event per channel, in order.
    let want: Vec<_> = chans
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let settled = 100 * (i as u64 + 1);
            // The first channel was settled to 50 before.
            let amount = if i == 0 { settled - 50 } else { settled };
            (c.address, settled, amount)
        })
        .collect();
    assert_eq!(settled_events(meta), want);
}

/// `n` channels of one signer to one funded payee (channel `i` holding
/// `deposit(i)`), sorted by address, and the settle accounts of their vault.
pub struct Batch {
    pub payee: Keypair,
    pub signer: SigningKey,
    pub chans: Vec<Chan>,
    pub accts: SettleAccounts,
}

impl Batch {
    pub fn with_deposits(h: &mut Harness, n: usize, deposit: impl Fn(u64) -> u64) -> Self {
        let payee = h.funded();
        let payee_tokens = h.payout_account(&payee.pubkey(), 0);
        let signer = new_signing_key();
        let mut chans: Vec<Chan> = (0..n as u64)
            .map(|i| h.open_channel_with_signer(&payee.pubkey(), deposit(i), &signer))
            .collect();
        chans.sort_by_key(|c| c.address.to_bytes());
        let accts = SettleAccounts::for_chan(&chans[0], payee_tokens);
        Self {
            payee,
            signer,
            chans,
            accts,
        }
    }

    pub fn addresses(&self) -> Vec<Pubkey> {
        self.chans.iter().map(|c| c.address).collect()
    }

    pub fn deposits(&self, h: &Harness) -> u64 {
        self.chans
            .iter()
            .map(|c| h.channel(&c.address).deposit)
            .sum()
    }

    /// `[ed25519, settle_batch]` over all channels with `targets`.
    pub fn ixs(&self, targets: &[u64], expires_at: i64) -> Vec<Instruction> {
        settle_batch_ixs(
            &self.accts,
            &self.signer,
            &self.addresses(),
            targets,
            expires_at,
        )
    }
}

/// Installs a lookup table of the vault's shared accounts (`last` after the
/// mint: the token program or the instructions sysvar) and the channels `chans`.
pub fn settle_table(
    h: &mut Harness,
    accts: &SettleAccounts,
    last: Pubkey,
    chans: &[Chan],
) -> solana_message::AddressLookupTableAccount {
    let mut addresses = vec![
        accts.vault,
        accts.vault_tokens,
        accts.payee_tokens,
        accts.mint,
        last,
    ];
    addresses.extend(chans.iter().map(|c| c.address));
    install_table(h, addresses)
}

/// Scenarios run by both `settle` (precompile) and `settle_signed` (program).
pub mod both {
    use super::*;

    /// 300 then 450 of a 1,000 deposit: each settle pays the increment and
    /// advances the watermark; the second logs one event of 150. Returns the first
    /// settle's metadata and the fee the harness's fee payer paid for it.
    pub fn settle_300_then_450(
        by: SettleBy,
    ) -> (Harness, Chan, SettleAccounts, TransactionMetadata, u64) {
        let (mut h, chan, accts) = fresh_channel(1_000);
        let (res, fee) = fee_of(&mut h, |h| h.settle_by(by, &accts, &[chan.voucher(300, 0)]));
        let first = ok(res);
        assert_eq!(h.balance(&accts.payee_tokens), 300);
        assert_eq!(h.balance(&chan.vault_tokens), 700);
        assert_eq!(h.channel(&chan.address).settled, 300);
        assert_eq!(h.vault(&chan.vault).outstanding, 700);

        let meta = ok(h.settle_by(by, &accts, &[chan.voucher(450, 0)]));
        assert_eq!(settled_events(&meta), vec![(chan.address, 450, 150)]);
        assert_eq!(h.balance(&accts.payee_tokens), 450);
        assert_eq!(h.balance(&chan.vault_tokens), 550);
        assert_eq!(h.channel(&chan.address).settled, 450);
        assert_eq!(h.vault(&chan.vault).outstanding, 550);
        (h, chan, accts, first, fee)
    }

    /// One voucher more than `cap` is refused; `cap` of them pay.
    pub fn more_vouchers_than_the_cap_are_refused(by: SettleBy, cap: u8) {
        let mut h = Harness::new();
        let n = usize::from(cap) + 1;
        let (chans, accts) = channels_to_one_payee(&mut h, n as u64, |_| 1_000);
        let vouchers: Vec<_> = chans.iter().map(|c| c.voucher(10, 0)).collect();
        // LiteSVM takes the oversized transaction; the program must refuse it.
        h.assert_settle_err(by, &accts, &vouchers, PaychanError::InvalidChannelCount);
        ok(h.settle_by(by, &accts, &vouchers[..n - 1]));
        assert_eq!(h.balance(&accts.payee_tokens), 10 * (n as u64 - 1));
    }

    /// A fresh channel (1,000) settled by `by` with `vouchers(chan)` fails with `err`; nothing moves.
    #[track_caller]
    pub fn refused(
        by: SettleBy,
        vouchers: impl Fn(&Harness, &Chan) -> Vec<SignedVoucher>,
        err: PaychanError,
    ) {
        let (mut h, chan, accts) = fresh_channel(1_000);
        let vouchers = vouchers(&h, &chan);
        h.assert_settle_err(by, &accts, &vouchers, err);
        assert_eq!(h.channel(&chan.address).settled, 0);
        assert_eq!(h.balance(&chan.vault_tokens), 1_000);
    }

    pub fn the_same_channel_twice_is_refused(by: SettleBy) {
        let twice = |_: &Harness, c: &Chan| vec![c.voucher(100, 0), c.voucher(200, 0)];
        refused(by, twice, PaychanError::DuplicateChannel);
    }

    pub fn an_expired_voucher_is_refused(by: SettleBy) {
        let expired = |h: &Harness, c: &Chan| vec![c.voucher(500, h.clock().unix_timestamp - 1)];
        refused(by, expired, PaychanError::VoucherExpired);
    }

    pub fn a_voucher_above_the_deposit_is_refused(by: SettleBy) {
        let above = |_: &Harness, c: &Chan| vec![c.voucher(1_001, 0)];
        refused(by, above, PaychanError::CumulativeExceedsDeposit);
    }

    pub fn a_voucher_signed_by_another_key_is_refused(by: SettleBy) {
        let forged = |_: &Harness, c: &Chan| vec![c.forged_voucher(900)];
        refused(by, forged, by.wrong_signer_error());
    }

    pub fn a_channel_passed_read_only_is_refused(by: SettleBy) {
        let (mut h, chan, accts) = fresh_channel(1_000);
        let mut ixs = by.ixs(&accts, &[chan.voucher(5, 0)]);
        let last = ixs[1].accounts.len() - 1;
        ixs[1].accounts[last].is_writable = false;
        assert_err(&h.send_as(&ixs, &[]), PaychanError::ChannelNotWritable);
    }

    /// A voucher of a channel presented with another payee's vault (and its own
    /// token accounts, so only the channel mismatches) is refused.
    pub fn a_channel_of_another_vault_is_refused(
        by: SettleBy,
    ) -> (Harness, Chan, SettleAccounts, Chan) {
        let (mut h, chan, accts) = fresh_channel(1_000);
        let (other, other_accts) = settle_fixture(&mut h, 1_000);
        let v = chan.voucher(400, 0);
        h.assert_settle_err(by, &other_accts, &[v], PaychanError::VaultMismatch);
        assert_eq!(h.channel(&chan.address).settled, 0);
        (h, chan, accts, other)
    }

    /// The vault (owned by the program) and the payout account (owned by the
    /// token program) passed as "channels", with vouchers signed for them.
    pub fn an_account_that_is_not_a_channel_is_refused(by: SettleBy) {
        let (mut h, chan, accts) = fresh_channel(1_000);
        for (account, err) in [
            (
                chan.vault,
                anchor_lang::error::ErrorCode::AccountDiscriminatorMismatch,
            ),
            (
                accts.payee_tokens,
                anchor_lang::error::ErrorCode::AccountOwnedByWrongProgram,
            ),
        ] {
            let res = h.settle_by(by, &accts, &[chan.voucher_as(&account, 5, 0)]);
            assert_anchor_err(&res, err);
        }
    }

    /// A voucher that pays nothing is still checked: its signer, its vault and
    /// its expiry. Returns the chain with the channel settled to 500.
    pub fn a_voucher_at_or_below_settled_is_still_checked(
        by: SettleBy,
    ) -> (Harness, Chan, SettleAccounts) {
        let (mut h, chan, accts) = fresh_channel(1_000);
        ok(h.settle_by(by, &accts, &[chan.voucher(500, 0)]));
        let forged = chan.forged_voucher(400);
        h.assert_settle_err(by, &accts, &[forged], by.wrong_signer_error());
        let expired = chan.voucher(400, h.clock().unix_timestamp - 1);
        h.assert_settle_err(by, &accts, &[expired], PaychanError::VoucherExpired);
        let (_, other_accts) = settle_fixture(&mut h, 1_000);
        let v = chan.voucher(400, 0);
        h.assert_settle_err(by, &other_accts, &[v], PaychanError::VaultMismatch);
        assert_eq!(h.balance(&accts.payee_tokens), 500);
        (h, chan, accts)
    }

    /// Payer A settles its own voucher (300) first; the payee's settle of A's
    /// and B's (400) still pays B's increment and logs only B's settlement.
    pub fn a_front_run_cannot_void_a_multi_payer_settle(
        by: SettleBy,
    ) -> (Harness, Chan, Chan, SettleAccounts) {
        let (mut h, a, b, accts) = two_channels();
        let (va, vb) = (a.voucher(300, 0), b.voucher(400, 0));
        // The front-run, by payer A.
        let front = h.funded();
        ok(h.send(&by.ixs(&accts, &[va]), &[&front]));
        let meta = ok(h.settle_by(by, &accts, &[va, vb]));
        assert_eq!(h.balance(&accts.payee_tokens), 700);
        assert_eq!(h.channel(&b.address).settled, 400);
        assert_eq!(settled_events(&meta), vec![(b.address, 400, 400)]);
        (h, a, b, accts)
    }
}
