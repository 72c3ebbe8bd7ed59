//! Property test: random instruction sequences over several payers, payees
//! and channels. A model predicts whether every step must succeed or fail;
//! after every step the chain must agree with the model and conserve tokens:
//!
//! - every vault's token balance ≥ its `outstanding`, and `outstanding` =
//!   Σ (deposit − settled − refunded) of its channels;
//! - Σ deposits = Σ paid to payees + Σ refunded + Σ vault balances − surplus
//!   (tokens sent straight to a vault, never credited to any channel).
use anchor_lang::prelude::Pubkey;
use anchor_spl::token::spl_token;
use ed25519_dalek::SigningKey;
use paychan::state::ChannelStatus;
use proptest::prelude::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::common::*;

const PAYERS: usize = 3;
const PAYEES: usize = 2;
const PAYER_FUNDS: u64 = 1_000_000_000;
const GRACE_SECS: i64 = 600;

#[derive(Clone, Debug)]
enum Op {
    Open {
        payer: usize,
        payee: usize,
        deposit: u64,
    },
    TopUp {
        chan: usize,
        amount: u64,
    },
    Settle {
        chans: Vec<(usize, u64)>,
    },
    RequestClose {
        chan: usize,
    },
    Advance {
        secs: i64,
    },
    Finalize {
        chan: usize,
    },
    Close {
        chan: usize,
        increment: Option<u64>,
    },
    Donate {
        payee: usize,
        amount: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PAYERS, 0..PAYEES, 1u64..5_000).prop_map(|(payer, payee, deposit)| Op::Open { payer, payee, deposit }),
        2 => (0..8usize, 1u64..3_000).prop_map(|(chan, amount)| Op::TopUp { chan, amount }),
        4 => prop::collection::vec((0..8usize, 0u64..3_000), 1..4).prop_map(|chans| Op::Settle { chans }),
        1 => (0..8usize).prop_map(|chan| Op::RequestClose { chan }),
        1 => (0i64..1_000).prop_map(|secs| Op::Advance { secs }),
        1 => (0..8usize).prop_map(|chan| Op::Finalize { chan }),
        1 => (0..8usize, prop::option::of(0u64..2_000)).prop_map(|(chan, increment)| Op::Close { chan, increment }),
        1 => (0..PAYEES, 1u64..1_000).prop_map(|(payee, amount)| Op::Donate { payee, amount }),
    ]
}

/// What the model believes about one channel.
struct ModelChan {
    chan: Chan,
    payee: usize,
    deposit: u64,
    settled: u64,
    refunded: u64,
    status: ChannelStatus,
    closing_at: i64,
}

impl ModelChan {
    fn settleable(&self, now: i64) -> bool {
        match self.status {
            ChannelStatus::Open => true,
            ChannelStatus::Closing => now < self.closing_at + GRACE_SECS,
            ChannelStatus::Closed => false,
        }
    }
}

struct World {
    h: Harness,
    payers: Vec<(Keypair, Pubkey)>,
    payees: Vec<(Keypair, Pubkey)>,
    chans: Vec<ModelChan>,
    donor: (Keypair, Pubkey),
    deposits: u64,
    surplus: u64,
    salt: u64,
}

impl World {
    fn new() -> Self {
        let mut h = Harness::new();
        let payers = (0..PAYERS)
            .map(|_| {
                let k = h.funded();
                let t = h.token_account(&k.pubkey(), PAYER_FUNDS);
                (k, t)
            })
            .collect();
        let payees = (0..PAYEES)
            .map(|_| {
                let k = h.funded();
                let t = h.payout_account(&k.pubkey(), 0);
                (k, t)
            })
            .collect();
        let donor_key = h.funded();
        let donor_tokens = h.token_account(&donor_key.pubkey(), PAYER_FUNDS);
        Self {
            h,
            payers,
            payees,
            chans: vec![],
            donor: (donor_key, donor_tokens),
            deposits: 0,
            surplus: 0,
            salt: 0,
        }
    }

    fn now(&self) -> i64 {
        self.h.clock().unix_timestamp
    }

    fn step(&mut self, op: &Op) {
        let now = self.now();
        match op {
            Op::Open {
                payer,
                payee,
                deposit,
            } => {
                self.salt += 1;
                let (payer_key, payer_tokens) = &self.payers[*payer];
                let (payee_key, _) = &self.payees[*payee];
                let signer = SigningKey::from_bytes(&[self.salt as u8 + 1; 32]);
                let signer_pk = Pubkey::new_from_array(signer.verifying_key().to_bytes());
                let mint = self.h.mint;
                let open_slot = self.h.clock().slot;
                let payee_pk = payee_key.pubkey();
                let vault = vault_address(&payee_pk, &mint);
                let chan = Chan {
                    payer: payer_key.insecure_clone(),
                    payee: payee_pk,
                    address: channel_address(
                        &payer_key.pubkey(),
                        &payee_pk,
                        &mint,
                        &signer_pk,
                        self.salt,
                        open_slot,
                    ),
                    signer,
                    salt: self.salt,
                    open_slot,
                    vault,
                    vault_tokens: vault_tokens_address(&vault),
                    payer_tokens: *payer_tokens,
                    mint,
                    token_program: self.h.token_program,
                };
                let p = OpenParams {
                    deposit: *deposit,
                    grace_period: GRACE_SECS,
                    ..Default::default()
                };
                let payer = chan.payer.insecure_clone();
                ok(self.h.send(&[open_ix(&chan, &p)], &[&payer]));
                self.deposits += deposit;
                self.chans.push(ModelChan {
                    chan,
                    payee: payee_pk_index(&self.payees, &payee_pk),
                    deposit: *deposit,
                    settled: 0,
                    refunded: 0,
                    status: ChannelStatus::Open,
                    closing_at: 0,
                });
            }
            Op::TopUp { chan, amount } => {
                let Some(m) = self.chans.get(*chan) else {
                    return;
                };
                let expect = m.status == ChannelStatus::Open;
                let payer = m.chan.payer.insecure_clone();
                let ix = top_up_ix(&m.chan, &payer.pubkey(), &m.chan.payer_tokens, *amount);
                let res = self.h.send(&[ix], &[&payer]);
                assert_eq!(res.is_ok(), expect, "top_up {op:?}: {res:?}");
                if expect {
                    self.chans[*chan].deposit += amount;
                    self.deposits += amount;
                }
            }
            Op::Settle { chans } => {
                let mut seen = std::collections::HashSet::new();
                let picked: Vec<(usize, u64)> = chans
                    .iter()
                    .filter(|(i, _)| *i < self.chans.len() && seen.insert(*i))
                    .copied()
                    .collect();
                let Some(&(first, _)) = picked.first() else {
                    return;
                };
                let payee = self.chans[first].payee;
                let picked: Vec<(usize, u64)> = picked
                    .into_iter()
                    .filter(|(i, _)| self.chans[*i].payee == payee)
                    .collect();
                let expect = picked.iter().all(|(i, inc)| {
                    let m = &self.chans[*i];
                    m.settleable(now) && *inc > 0 && m.settled + inc <= m.deposit
                });
                let vouchers: Vec<_> = picked
                    .iter()
                    .map(|(i, inc)| {
                        let m = &self.chans[*i];
                        m.chan.voucher(m.settled + inc, 0)
                    })
                    .collect();
                let accts = SettleAccounts::for_chan(&self.chans[first].chan, self.payees[payee].1);
                let res = self.h.send_as(&settle_ixs(&accts, &vouchers), &[]);
                assert_eq!(res.is_ok(), expect, "settle {picked:?}: {res:?}");
                if expect {
                    for (i, inc) in picked {
                        self.chans[i].settled += inc;
                    }
                }
            }
            Op::RequestClose { chan } => {
                let Some(m) = self.chans.get(*chan) else {
                    return;
                };
                let expect = m.status == ChannelStatus::Open;
                let payer = m.chan.payer.insecure_clone();
                let res = self
                    .h
                    .send(&[request_close_ix(&m.chan, &payer.pubkey())], &[&payer]);
                assert_eq!(res.is_ok(), expect, "request_close: {res:?}");
                if expect {
                    self.chans[*chan].status = ChannelStatus::Closing;
                    self.chans[*chan].closing_at = now;
                }
            }
            Op::Advance { secs } => self.h.advance(1, *secs),
            Op::Finalize { chan } => {
                let Some(m) = self.chans.get(*chan) else {
                    return;
                };
                let expect = m.status == ChannelStatus::Closing && now >= m.closing_at + GRACE_SECS;
                let ix = finalize_ix(&m.chan, &m.chan.payer_tokens, &m.chan.payer.pubkey());
                let res = self.h.send_as(&[ix], &[]);
                assert_eq!(res.is_ok(), expect, "finalize: {res:?}");
                if expect {
                    let m = &mut self.chans[*chan];
                    m.refunded = m.deposit - m.settled;
                    m.status = ChannelStatus::Closed;
                }
            }
            Op::Close { chan, increment } => {
                let Some(m) = self.chans.get(*chan) else {
                    return;
                };
                let (payee_key, payee_tokens) = &self.payees[m.payee];
                let payee_key = payee_key.insecure_clone();
                let accounts = CloseAccounts::of(&m.chan, *payee_tokens);
                let not_closed = m.status != ChannelStatus::Closed;
                let (ixs, expect) = match increment {
                    None => (
                        vec![close_ix(&m.chan, &payee_key.pubkey(), &accounts, false)],
                        not_closed,
                    ),
                    Some(inc) => (
                        vec![
                            ed25519_ix(&[m.chan.voucher(m.settled + inc, 0)]),
                            close_ix(&m.chan, &payee_key.pubkey(), &accounts, true),
                        ],
                        not_closed && m.settleable(now) && *inc > 0 && m.settled + inc <= m.deposit,
                    ),
                };
                let res = self.h.send_as(&ixs, &[&payee_key]);
                assert_eq!(res.is_ok(), expect, "close {op:?}: {res:?}");
                if expect {
                    let m = &mut self.chans[*chan];
                    m.settled += increment.unwrap_or(0);
                    m.refunded = m.deposit - m.settled;
                    m.status = ChannelStatus::Closed;
                }
            }
            Op::Donate { payee, amount } => {
                let vault = vault_address(&self.payees[*payee].0.pubkey(), &self.h.mint);
                let vault_tokens = vault_tokens_address(&vault);
                if !self.h.exists(&vault_tokens) {
                    return;
                }
                let (donor, donor_tokens) = (&self.donor.0.insecure_clone(), self.donor.1);
                let ix = spl_token::instruction::transfer(
                    &spl_token::ID,
                    &donor_tokens,
                    &vault_tokens,
                    &donor.pubkey(),
                    &[],
                    *amount,
                )
                .unwrap();
                ok(self.h.send(&[ix], &[donor]));
                self.surplus += amount;
            }
        }
    }

    fn check(&self) {
        let mut paid = 0;
        for (_, tokens) in &self.payees {
            paid += self.h.balance(tokens);
        }
        let mut vault_balances = 0;
        for (payee, _) in &self.payees {
            let vault = vault_address(&payee.pubkey(), &self.h.mint);
            if !self.h.exists(&vault) {
                continue;
            }
            let v = self.h.vault(&vault);
            let balance = self.h.balance(&v.tokens);
            let owed: u64 = self
                .chans
                .iter()
                .filter(|m| m.chan.vault == vault)
                .map(|m| m.deposit - m.settled - m.refunded)
                .sum();
            assert_eq!(v.outstanding, owed, "outstanding = Σ live escrow");
            assert!(
                balance >= v.outstanding,
                "vault balance {balance} < outstanding {}",
                v.outstanding
            );
            vault_balances += balance;
        }
        let mut refunded = 0;
        for m in &self.chans {
            let c = self.h.channel(&m.chan.address);
            assert_eq!(
                (c.deposit, c.settled, c.refunded, c.status),
                (m.deposit, m.settled, m.refunded, m.status as u8),
                "channel state follows the model"
            );
            refunded += c.refunded;
        }
        let paid_in: u64 = self
            .payers
            .iter()
            .map(|(_, t)| PAYER_FUNDS - self.h.balance(t))
            .sum();
        assert_eq!(paid_in, self.deposits - refunded, "payers' net outflow");
        assert_eq!(
            self.deposits + self.surplus,
            paid + refunded + vault_balances,
            "conservation"
        );
    }
}

fn payee_pk_index(payees: &[(Keypair, Pubkey)], pk: &Pubkey) -> usize {
    payees.iter().position(|(k, _)| k.pubkey() == *pk).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_conserve_tokens(ops in prop::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        // Always start with one channel per payee so other ops have targets.
        w.step(&Op::Open { payer: 0, payee: 0, deposit: 2_000 });
        w.step(&Op::Open { payer: 1, payee: 1, deposit: 3_000 });
        w.check();
        for op in &ops {
            w.step(op);
            w.check();
        }
    }
}
