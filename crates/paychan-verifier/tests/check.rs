//! Every rule of the check, with the exact rejection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::{
    ChannelSnapshot, ChannelSource, CheckError, LoadError, MemoryChannels, MemoryStore, Rejection,
    SignedVoucher, SnapshotError, Terms, Verifier, VoucherStore,
};
use paychan_voucher::sign_v1;

fn verifier(
    f: &Fixture,
    status: ChannelStatus,
    settled: u64,
) -> Verifier<MemoryChannels, MemoryStore> {
    Verifier::new(
        f.channels(status, settled),
        MemoryStore::default(),
        f.terms(),
    )
}

/// A verifier of `f`'s open channel with `f`'s terms as `change` leaves them.
fn with_terms(
    f: &Fixture,
    change: impl FnOnce(&mut Terms),
) -> Verifier<MemoryChannels, MemoryStore> {
    let mut terms = f.terms();
    change(&mut terms);
    Verifier::new(
        f.channels(ChannelStatus::Open, 0),
        MemoryStore::default(),
        terms,
    )
}

fn rejection(r: Result<paychan_verifier::Receipt, CheckError>) -> Rejection {
    match r {
        Err(CheckError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// `f`'s voucher for `PRICE` with a flipped signature bit.
fn forged(f: &Fixture) -> SignedVoucher {
    let mut forged = f.voucher(PRICE, 0);
    forged.signature[1] ^= 1;
    forged
}

/// How `v` refuses `voucher` at `NOW`.
fn refused<C: ChannelSource, S: VoucherStore>(
    v: &Verifier<C, S>,
    voucher: &SignedVoucher,
) -> Rejection {
    rejection(block_on(v.check(voucher, NOW)))
}

#[test]
fn a_valid_voucher_is_accepted_and_stored() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    let voucher = f.voucher(PRICE, 0);
    let r = block_on(v.check(&voucher, NOW)).unwrap();
    assert_eq!((r.channel, r.payer), (f.channel, f.payer));
    assert_eq!(
        (r.cumulative, r.charged, r.previous, r.duplicate),
        (PRICE, PRICE, 0, false)
    );
    assert_eq!(
        v.store().latest(&f.channel).unwrap().unwrap().voucher,
        voucher
    );
    let r = block_on(v.check(&f.voucher(3 * PRICE, 0), NOW)).unwrap();
    assert_eq!(
        (r.cumulative, r.charged, r.previous),
        (3 * PRICE, 2 * PRICE, PRICE)
    );
}

#[test]
fn resending_the_same_voucher_returns_the_same_receipt_without_charging_again() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    let voucher = f.voucher(2 * PRICE, 0);
    let first = block_on(v.check(&voucher, NOW)).unwrap();
    let again = block_on(v.check(&voucher, NOW)).unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.cumulative, again.charged, again.previous),
        (first.cumulative, first.charged, first.previous)
    );
    assert_eq!(v.store().latest(&f.channel).unwrap().unwrap().previous, 0);
}

#[test]
fn an_increment_below_the_price_is_refused_with_the_resync_hint() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    block_on(v.check(&f.voucher(5 * PRICE, 0), NOW)).unwrap();
    let r = refused(&v, &f.voucher(5 * PRICE + PRICE - 1, 0));
    assert_eq!(
        r,
        Rejection::InsufficientIncrement {
            cumulative: 6 * PRICE - 1,
            required: 6 * PRICE,
            last_accepted: 5 * PRICE
        }
    );
    assert_eq!(r.last_accepted(), Some(5 * PRICE));
    assert_eq!(r.reason(), "invalid_payment_amount");
    // An older voucher too.
    let r = refused(&v, &f.voucher(PRICE, 0));
    assert_eq!(r.last_accepted(), Some(5 * PRICE));
}

#[test]
fn value_already_settled_on_chain_cannot_pay_again() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 10 * PRICE);
    let r = refused(&v, &f.voucher(10 * PRICE, 0));
    assert_eq!(r.last_accepted(), Some(10 * PRICE));
    let ok = block_on(v.check(&f.voucher(11 * PRICE, 0), NOW)).unwrap();
    assert_eq!((ok.charged, ok.previous), (PRICE, 10 * PRICE));
}

#[test]
fn a_routes_own_price_is_enforced() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    let r = rejection(block_on(v.check_priced(
        &f.voucher(4 * PRICE, 0),
        5 * PRICE,
        NOW,
    )));
    assert!(
        matches!(r, Rejection::InsufficientIncrement { required, .. } if required == 5 * PRICE)
    );
    let ok = block_on(v.check_priced(&f.voucher(5 * PRICE, 0), 5 * PRICE, NOW)).unwrap();
    assert_eq!(ok.charged, 5 * PRICE);
}

#[test]
fn above_the_deposit_is_refused() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    let r = refused(&v, &f.voucher(DEPOSIT + 1, 0));
    assert_eq!(
        r,
        Rejection::ExceedsDeposit {
            cumulative: DEPOSIT + 1,
            deposit: DEPOSIT
        }
    );
    assert_eq!(r.reason(), "insufficient_funds");
    assert!(v.store().latest(&f.channel).unwrap().is_none());
}

/// The deposit is a bound the payer may reach: a voucher for exactly the
/// deposit pays, one base unit more does not.
#[test]
fn a_voucher_spending_exactly_the_deposit_is_accepted() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    block_on(v.check(&f.voucher(DEPOSIT - PRICE, 0), NOW)).unwrap();
    let r = block_on(v.check(&f.voucher(DEPOSIT, 0), NOW)).unwrap();
    assert_eq!(
        (r.cumulative, r.charged, r.previous, r.duplicate),
        (DEPOSIT, PRICE, DEPOSIT - PRICE, false)
    );
    assert_eq!(
        v.store()
            .latest(&f.channel)
            .unwrap()
            .unwrap()
            .voucher
            .voucher
            .cumulative_amount,
        DEPOSIT
    );
    let r = refused(&v, &f.voucher(DEPOSIT + PRICE, 0));
    assert_eq!(
        r,
        Rejection::ExceedsDeposit {
            cumulative: DEPOSIT + PRICE,
            deposit: DEPOSIT
        }
    );
    // The same holds for /verify.
    let v = verifier(&f, ChannelStatus::Open, 0);
    let r = block_on(v.verify_only(&f.voucher(DEPOSIT, 0), PRICE, NOW)).unwrap();
    assert_eq!((r.cumulative, r.charged), (DEPOSIT, DEPOSIT));
}

/// A source whose cache still shows the deposit before a top-up, while the
/// chain (`load`) already has the new one.
struct ToppedUp {
    stale: ChannelSnapshot,
    fresh: ChannelSnapshot,
    loads: std::sync::atomic::AtomicUsize,
}

impl ToppedUp {
    /// `f`'s open channel, topped up to twice the deposit on chain, where
    /// `change` may change more.
    fn new(f: &Fixture, change: impl FnOnce(&mut ChannelSnapshot)) -> Self {
        let stale = f.snapshot(ChannelStatus::Open, 0);
        let mut fresh = stale.clone();
        fresh.deposit = 2 * DEPOSIT;
        change(&mut fresh);
        Self {
            stale,
            fresh,
            loads: Default::default(),
        }
    }
}

impl paychan_verifier::ChannelSource for ToppedUp {
    fn get(&self, _: &Pubkey) -> Option<ChannelSnapshot> {
        Some(self.stale.clone())
    }

    fn load(
        &self,
        _: &Pubkey,
    ) -> impl std::future::Future<Output = Result<Option<ChannelSnapshot>, LoadError>> + Send {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::future::ready(Ok(Some(self.fresh.clone())))
    }
}

#[test]
fn a_signed_voucher_above_a_stale_deposit_rereads_the_channel_once() {
    let f = Fixture::new();
    let source = ToppedUp::new(&f, |_| {});
    // No forgery backoff: the valid voucher right after the forged one is
    // re-read at once (tests/check.rs `repeated_forgeries_are_refused_from_cached_state`
    // covers the backoff).
    let v = Verifier::new(source, MemoryStore::default(), f.terms())
        .with_forgery_backoff(std::time::Duration::ZERO);
    let loads = |v: &Verifier<ToppedUp, MemoryStore>| {
        v.channels().loads.load(std::sync::atomic::Ordering::SeqCst)
    };

    // Within the cached deposit: no re-read.
    block_on(v.check(&f.voucher(PRICE, 0), NOW)).unwrap();
    assert_eq!(loads(&v), 0);

    // A forged voucher above the cached deposit does not cost a re-read.
    let mut forged = f.voucher(DEPOSIT + PRICE, 0);
    forged.signature[0] ^= 1;
    let r = refused(&v, &forged);
    assert!(matches!(r, Rejection::ExceedsDeposit { .. }), "{r:?}");
    assert_eq!(loads(&v), 0);

    // A valid one is checked against the chain's deposit and accepted.
    let r = block_on(v.check(&f.voucher(DEPOSIT + PRICE, 0), NOW)).unwrap();
    assert_eq!((r.cumulative, r.charged), (DEPOSIT + PRICE, DEPOSIT));
    assert_eq!(loads(&v), 1);

    // Above even the fresh deposit: re-read, then refused with the fresh figure.
    let r = refused(&v, &f.voucher(2 * DEPOSIT + PRICE, 0));
    assert_eq!(
        r,
        Rejection::ExceedsDeposit {
            cumulative: 2 * DEPOSIT + PRICE,
            deposit: 2 * DEPOSIT
        }
    );
    assert_eq!(loads(&v), 2);
}

/// The signature checked before a re-read stands only if the re-read
/// channel has the same signer; otherwise the voucher is checked again
/// (and here refused).
#[test]
fn a_reread_channel_with_another_signer_is_checked_again() {
    let f = Fixture::new();
    let source = ToppedUp::new(&f, |fresh| {
        fresh.signer = Pubkey::new_from_array(Fixture::new().key.verifying_key().to_bytes());
    });
    let v = Verifier::new(source, MemoryStore::default(), f.terms());
    let r = refused(&v, &f.voucher(DEPOSIT + PRICE, 0));
    assert_eq!(r, Rejection::WrongSigner);
    assert!(v.store().latest(&f.channel).unwrap().is_none());
}

/// Finding 4 of issue 18: the offer advertises a grace period and a
/// minimum deposit; a channel below either is not served.
#[test]
fn channels_below_the_advertised_terms_are_refused() {
    let f = Fixture::new();
    let v = with_terms(&f, |t| t.min_grace_period = 7_200);
    let r = refused(&v, &f.voucher(PRICE, 0));
    assert_eq!(
        r,
        Rejection::GracePeriodTooShort {
            grace_period: 3_600,
            required: 7_200
        }
    );
    assert_eq!(
        (r.code(), r.field()),
        ("grace_period_too_short", "channel.gracePeriod")
    );
    let v = with_terms(&f, |t| t.min_deposit = DEPOSIT + 1);
    let r = refused(&v, &f.voucher(PRICE, 0));
    assert_eq!(
        r,
        Rejection::DepositTooSmall {
            deposit: DEPOSIT,
            required: DEPOSIT + 1
        }
    );
    assert!(v.store().latest(&f.channel).unwrap().is_none());
    // At the terms exactly: served.
    let v = with_terms(&f, |t| {
        (t.min_grace_period, t.min_deposit) = (3_600, DEPOSIT)
    });
    block_on(v.check(&f.voucher(PRICE, 0), NOW)).unwrap();
}

/// Findings 6 and 11 of issue 18: a stale voucher reads the last accepted
/// amount only once its signature verifies; after a forgery, the channel's
/// stale and over-deposit vouchers are refused from cached state (no
/// signature check, no re-read) for the backoff.
#[test]
fn repeated_forgeries_are_refused_from_cached_state() {
    let f = Fixture::new();
    let source = ToppedUp::new(&f, |_| {});
    let v = Verifier::new(source, MemoryStore::default(), f.terms())
        .with_forgery_backoff(std::time::Duration::from_millis(300));
    let loads = |v: &Verifier<ToppedUp, MemoryStore>| {
        v.channels().loads.load(std::sync::atomic::Ordering::SeqCst)
    };
    block_on(v.check(&f.voucher(5 * PRICE, 0), NOW)).unwrap();
    // A forged stale voucher: its signature is checked (and fails) before
    // anything is disclosed.
    assert_eq!(refused(&v, &forged(&f)), Rejection::BadSignature);
    // Within the backoff: stale vouchers are refused without the hint and
    // over-deposit ones without a re-read, valid or not.
    assert_eq!(
        refused(&v, &f.voucher(2 * PRICE, 0)),
        Rejection::Stale {
            cumulative: 2 * PRICE
        }
    );
    let r = refused(&v, &f.voucher(DEPOSIT + PRICE, 0));
    assert!(matches!(r, Rejection::ExceedsDeposit { .. }), "{r:?}");
    assert_eq!(loads(&v), 0, "no re-read while backing off");
    // A voucher that pays is checked and accepted as always.
    let r = block_on(v.check(&f.voucher(6 * PRICE, 0), NOW)).unwrap();
    assert_eq!(r.charged, PRICE);
    // After the backoff, a validly signed stale voucher reads the hint.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        refused(&v, &f.voucher(2 * PRICE, 0)),
        Rejection::InsufficientIncrement {
            cumulative: 2 * PRICE,
            required: 7 * PRICE,
            last_accepted: 6 * PRICE
        }
    );
}

/// The forgery memory is cleared only when it is full: a forgery on
/// another channel does not end this channel's backoff.
#[test]
fn a_forgery_on_another_channel_keeps_this_channels_backoff() {
    let f = Fixture::new();
    let g = Fixture {
        payee: f.payee,
        mint: f.mint,
        ..Fixture::new()
    };
    let channels = f.channels(ChannelStatus::Open, 0);
    channels.upsert(g.snapshot(ChannelStatus::Open, 0)).unwrap();
    let v = Verifier::new(channels, MemoryStore::default(), f.terms())
        .with_forgery_backoff(std::time::Duration::from_secs(60));
    block_on(v.check(&f.voucher(5 * PRICE, 0), NOW)).unwrap();
    assert_eq!(refused(&v, &forged(&f)), Rejection::BadSignature);
    assert_eq!(refused(&v, &forged(&g)), Rejection::BadSignature);
    // Both channels back off: a stale voucher of either gets no hint.
    assert_eq!(
        refused(&v, &f.voucher(2 * PRICE, 0)),
        Rejection::Stale {
            cumulative: 2 * PRICE
        }
    );
    block_on(v.check(&g.voucher(3 * PRICE, 0), NOW)).unwrap();
    assert_eq!(
        refused(&v, &g.voucher(2 * PRICE, 0)),
        Rejection::Stale {
            cumulative: 2 * PRICE
        }
    );
}

#[test]
fn wrong_program_payee_or_mint_is_refused() {
    let f = Fixture::new();
    /// Which term differs, how, and the rejection.
    type Case = (&'static str, fn(&mut Terms), Rejection);
    let cases: [Case; 3] = [
        (
            "payee",
            |t| t.payee = Pubkey::new_unique(),
            Rejection::WrongPayee,
        ),
        (
            "mint",
            |t| t.mint = Pubkey::new_unique(),
            Rejection::WrongMint,
        ),
        (
            "program",
            |t| t.program_id = Pubkey::new_unique(),
            Rejection::WrongProgram,
        ),
    ];
    for (name, change, expected) in cases {
        let v = with_terms(&f, change);
        assert_eq!(
            refused(&v, &f.voucher(PRICE, 0)),
            expected,
            "another {name}"
        );
    }
}

#[test]
fn closing_and_closed_channels_are_refused() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Closing, 0);
    assert_eq!(refused(&v, &f.voucher(PRICE, 0)), Rejection::ChannelClosing);
    let v = verifier(&f, ChannelStatus::Closed, 0);
    assert_eq!(refused(&v, &f.voucher(PRICE, 0)), Rejection::ChannelClosed);
}

#[test]
fn expired_or_soon_expiring_vouchers_are_refused() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    let margin = v.terms().settle_margin_secs;
    let r = refused(&v, &f.voucher(PRICE, NOW - 1));
    assert!(matches!(r, Rejection::Expired { .. }));
    // Valid now, but not long enough for the settler.
    let r = refused(&v, &f.voucher(PRICE, NOW + margin - 1));
    assert_eq!(
        r,
        Rejection::Expired {
            expires_at: NOW + margin - 1,
            needed_until: NOW + margin
        }
    );
    let ok = block_on(v.check(&f.voucher(PRICE, NOW + margin), NOW)).unwrap();
    assert_eq!(ok.cumulative, PRICE);
}

#[test]
fn a_voucher_from_another_signer_is_refused() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    let mallory = Fixture::new();
    let mut forged = sign_v1(&mallory.key, &f.voucher(PRICE, 0).voucher);
    assert_eq!(refused(&v, &forged), Rejection::WrongSigner);
    // Claiming the right signer with someone else's signature.
    forged.signer = f.key.verifying_key().to_bytes();
    assert_eq!(refused(&v, &forged), Rejection::BadSignature);
    assert!(v.store().latest(&f.channel).unwrap().is_none());
}

#[test]
fn a_tampered_voucher_is_refused() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    let mut voucher = f.voucher(PRICE, 0);
    voucher.voucher.cumulative_amount = 2 * PRICE;
    assert_eq!(refused(&v, &voucher), Rejection::BadSignature);
    let mut voucher = f.voucher(PRICE, 0);
    voucher.signature[5] ^= 0x40;
    assert_eq!(refused(&v, &voucher), Rejection::BadSignature);
}

#[test]
fn an_unknown_channel_is_refused() {
    let f = Fixture::new();
    let v = Verifier::new(MemoryChannels::default(), MemoryStore::default(), f.terms());
    assert_eq!(
        refused(&v, &f.voucher(PRICE, 0)),
        Rejection::UnknownChannel(f.channel)
    );
}

#[test]
fn a_different_voucher_for_an_accepted_amount_conflicts() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0);
    block_on(v.check(&f.voucher(PRICE, 0), NOW)).unwrap();
    let other = f.voucher(PRICE, NOW + 86_400);
    assert_eq!(
        refused(&v, &other),
        Rejection::Conflict { cumulative: PRICE }
    );
}

#[test]
fn verify_only_applies_every_rule_but_stores_nothing() {
    let f = Fixture::new();
    let v = verifier(&f, ChannelStatus::Open, 0).with_forgery_backoff(std::time::Duration::ZERO);
    let voucher = f.voucher(2 * PRICE, 0);
    let r = block_on(v.verify_only(&voucher, PRICE, NOW)).unwrap();
    assert_eq!(
        (r.payer, r.cumulative, r.charged, r.previous, r.duplicate),
        (f.payer, 2 * PRICE, 2 * PRICE, 0, false)
    );
    assert!(v.store().latest(&f.channel).unwrap().is_none());
    // The signature is still checked.
    let mut tampered = voucher;
    tampered.voucher.cumulative_amount = 3 * PRICE;
    assert_eq!(
        rejection(block_on(v.verify_only(&tampered, PRICE, NOW))),
        Rejection::BadSignature
    );
    // Against the store's latest: too small an increment, or a duplicate.
    block_on(v.check(&voucher, NOW)).unwrap();
    assert_eq!(
        rejection(block_on(v.verify_only(
            &f.voucher(2 * PRICE + 1, 0),
            PRICE,
            NOW
        ))),
        Rejection::InsufficientIncrement {
            cumulative: 2 * PRICE + 1,
            required: 3 * PRICE,
            last_accepted: 2 * PRICE,
        }
    );
    assert!(
        block_on(v.verify_only(&voucher, PRICE, NOW))
            .unwrap()
            .duplicate
    );
    let next = f.voucher(4 * PRICE, 0);
    let r = block_on(v.verify_only(&next, PRICE, NOW)).unwrap();
    assert_eq!((r.charged, r.previous), (2 * PRICE, 2 * PRICE));
    assert_eq!(
        v.store().latest(&f.channel).unwrap().unwrap().voucher,
        voucher,
        "verify_only left the latest untouched"
    );
}

#[test]
fn snapshots_refuse_foreign_or_broken_accounts() {
    let f = Fixture::new();
    let state = f.channel_state(ChannelStatus::Open, 0);
    let data = f.account_data(&state);
    let other = Pubkey::new_unique();
    assert_eq!(
        ChannelSnapshot::from_account(f.channel, &other, &paychan_sdk::ID, &data),
        Err(SnapshotError::WrongOwner)
    );
    let mut bad = data.clone();
    bad[0] ^= 1;
    assert_eq!(
        ChannelSnapshot::from_account(f.channel, &paychan_sdk::ID, &paychan_sdk::ID, &bad),
        Err(SnapshotError::NotAChannel)
    );
    assert_eq!(
        ChannelSnapshot::from_account(
            f.channel,
            &paychan_sdk::ID,
            &paychan_sdk::ID,
            &data[..data.len() - 1]
        ),
        Err(SnapshotError::NotAChannel)
    );
    let mut weak = state;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    weak.authorized_signer = Pubkey::new_from_array(identity);
    assert_eq!(
        ChannelSnapshot::from_account(
            f.channel,
            &paychan_sdk::ID,
            &paychan_sdk::ID,
            &f.account_data(&weak)
        ),
        Err(SnapshotError::WeakSigner)
    );
    let s = f.snapshot(ChannelStatus::Closing, 5);
    assert_eq!(s.grace_ends_at, Some(NOW - 10 + 3_600));
    assert_eq!((s.deposit, s.settled, s.payee), (DEPOSIT, 5, f.payee));
}

/// With room for one decompressed key, channels take turns evicting each
/// other's key: every voucher is still checked against its own channel's
/// signer (a key cached for one channel never verifies another's voucher),
/// and the snapshot table round-trips every field it stores compactly.
#[test]
fn a_key_cache_of_one_still_checks_every_channel_against_its_own_signer() {
    let a = Fixture::new();
    let mut b = Fixture::new();
    b.payee = a.payee;
    b.mint = a.mint;
    let channels = MemoryChannels::default();
    for f in [&a, &b] {
        let snapshot = f.snapshot(ChannelStatus::Closing, 7);
        channels.upsert(snapshot.clone()).unwrap();
        let stored = paychan_verifier::ChannelSource::get(&channels, &f.channel).unwrap();
        assert_eq!(stored, snapshot);
        assert_eq!(stored.grace_ends_at, Some(NOW - 10 + 3_600));
        channels.upsert(f.snapshot(ChannelStatus::Open, 0)).unwrap();
    }
    assert_eq!(channels.len(), 2);
    let v = Verifier::with_key_cache(channels, MemoryStore::default(), a.terms(), 1);
    for k in 1..=5 {
        for f in [&a, &b] {
            let r = block_on(v.check(&f.voucher(k * PRICE, 0), NOW)).unwrap();
            assert_eq!(
                (r.channel, r.cumulative, r.charged),
                (f.channel, k * PRICE, PRICE)
            );
            assert_eq!(r.payer, f.payer);
        }
        // `b`'s channel with `a`'s key: signed by the wrong signer.
        let mut crossed = sign_v1(
            &a.key,
            &paychan_voucher::VoucherV1 {
                channel_id: b.channel.to_bytes(),
                cumulative_amount: (k + 10) * PRICE,
                expires_at: 0,
            },
        );
        assert_eq!(refused(&v, &crossed), Rejection::WrongSigner);
        // Claiming `b`'s signer with `a`'s signature: a bad signature.
        crossed.signer = b.key.verifying_key().to_bytes();
        assert_eq!(refused(&v, &crossed), Rejection::BadSignature);
    }
    v.channels().remove(&a.channel);
    assert_eq!(v.channels().len(), 1);
    assert!(paychan_verifier::ChannelSource::get(v.channels(), &a.channel).is_none());
    assert!(paychan_verifier::ChannelSource::get(v.channels(), &b.channel).is_some());
}
