//! State persistence, offer selection, voucher sequencing and resync rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use paychan_client::{
    Budget, ChannelState, ClientError, OfferFilter, Phase, StateDir, offer, state::STATE_VERSION,
};
use paychan_sdk::Pubkey;
use paychan_x402::{scheme::PaychanExtra, v2};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn state(key: &SigningKey, deposit: u64) -> ChannelState {
    ChannelState {
        version: STATE_VERSION,
        address: Pubkey::new_unique(),
        payee: Pubkey::new_unique(),
        mint: Pubkey::new_unique(),
        program_id: paychan_sdk::ID,
        token_program: paychan_sdk::TOKEN_PROGRAM_ID,
        signer: Pubkey::new_from_array(key.verifying_key().to_bytes()),
        network: "solana:test".into(),
        salt: 7,
        open_slot: 42,
        grace_period: 600,
        deposit,
        settled: 0,
        accepted: 0,
        signed: 0,
        last_voucher: None,
        credit: false,
        phase: Phase::Open,
    }
}

/// `key(seed)`, its channel state of `deposit` and a budget of `limit`.
fn signer(seed: u8, deposit: u64, limit: u64) -> (SigningKey, ChannelState, Budget) {
    let k = key(seed);
    let s = state(&k, deposit);
    (k, s, Budget::new(limit))
}

/// A state directory (in a temporary one, returned to keep it) and a
/// channel state of `deposit` signed by `key(seed)`.
fn stored(seed: u8, deposit: u64) -> (tempfile::TempDir, StateDir, SigningKey, ChannelState) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateDir::open(dir.path()).unwrap();
    let k = key(seed);
    let s = state(&k, deposit);
    (dir, store, k, s)
}

#[test]
fn state_round_trips_atomically_and_keys_are_private() {
    let (dir, store, k, mut s) = stored(1, 1_000);
    let mut budget = Budget::new(10_000);
    s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    store.save_key(&s.address, &k).unwrap();
    store.save(&s).unwrap();
    // Overwrite: the newest state wins, no temp files remain.
    s.on_paid(10);
    s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    store.save(&s).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("channels"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers, vec![format!("{}.json", s.address)]);

    // A restart reads the same state and key back.
    let reopened = StateDir::open(dir.path()).unwrap();
    let loaded = reopened.load().unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0, s);
    assert_eq!(loaded[0].0.signed, 20);
    assert_eq!(loaded[0].0.accepted, 10);
    assert_eq!(loaded[0].1.to_bytes(), k.to_bytes());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys").join(format!("{}.key", s.address)))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A key that does not match the state's signer is refused.
    reopened.save_key(&s.address, &key(2)).unwrap();
    assert!(matches!(
        reopened.load(),
        Err(ClientError::CorruptState { .. })
    ));
    // So is a state file holding another channel.
    reopened.save_key(&s.address, &k).unwrap();
    let other = Pubkey::new_unique();
    std::fs::copy(
        dir.path()
            .join("channels")
            .join(format!("{}.json", s.address)),
        dir.path().join("channels").join(format!("{other}.json")),
    )
    .unwrap();
    assert!(matches!(
        reopened.load(),
        Err(ClientError::CorruptState { .. })
    ));
    reopened.remove(&other).unwrap();
    reopened.remove(&s.address).unwrap();
    assert!(reopened.load().unwrap().is_empty());
}

#[test]
fn vouchers_are_cumulative_and_budgeted() {
    let (k, mut s, mut budget) = signer(3, 100, 25);
    let v1 = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    assert_eq!(v1.voucher.cumulative_amount, 10);
    assert_eq!(v1.voucher.channel_id, s.address.to_bytes());
    assert_eq!(v1.voucher.expires_at, 0);
    v1.verify_strict().unwrap();
    // Not yet confirmed: the same amount is due again, the same voucher comes back.
    let again = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    assert_eq!(again, v1);
    assert_eq!(budget.spent, 10);
    s.on_paid(10);
    let v2 = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    assert_eq!(v2.voucher.cumulative_amount, 20);
    assert_eq!(budget.spent, 20);
    s.on_paid(20);
    // 30 would exceed the budget of 25.
    let err = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap_err();
    assert!(matches!(err, ClientError::BudgetExhausted { .. }), "{err}");
    assert_eq!(budget.spent, 20);
    assert_eq!(s.signed, 20);
    // Nor beyond the deposit.
    let mut budget = Budget::new(1_000);
    let mut small = state(&k, 15);
    small.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    small.on_paid(10);
    assert!(!small.can_pay(10));
    assert!(small.next_voucher(&k, 10, 0, None, &mut budget).is_err());
    // A closing channel pays nothing.
    let mut closing = state(&k, 100);
    closing.phase = Phase::Closing;
    assert!(matches!(
        closing.next_voucher(&k, 1, 0, None, &mut budget),
        Err(ClientError::ChannelNotOpen(_))
    ));
}

#[test]
fn expiring_vouchers_carry_the_expiry() {
    let (k, mut s, mut budget) = signer(4, 100, 100);
    let ttl = Some(std::time::Duration::from_secs(3_600));
    let v = s.next_voucher(&k, 5, 1_000_000, ttl, &mut budget).unwrap();
    assert_eq!(v.voucher.expires_at, 1_003_600);
    // Still fresh: reused as is; near expiry: re-signed with a new expiry.
    assert_eq!(
        s.next_voucher(&k, 5, 1_001_000, ttl, &mut budget).unwrap(),
        v
    );
    let later = s.next_voucher(&k, 5, 1_002_000, ttl, &mut budget).unwrap();
    assert_eq!(later.voucher.expires_at, 1_005_600);
    assert_eq!(later.voucher.cumulative_amount, 5);
    assert_eq!(budget.spent, 5);
}

#[test]
fn a_server_error_turns_the_voucher_into_a_credit() {
    let (k, mut s, mut budget) = signer(5, 100, 100);
    let v = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    s.on_server_error();
    assert!(s.credit);
    // The credit is re-sent, even for another price; nothing new is signed.
    let resent = s.next_voucher(&k, 7, 0, None, &mut budget).unwrap();
    assert_eq!(resent, v);
    assert_eq!(budget.spent, 10);
    s.on_paid(10);
    assert!(!s.credit);
    assert_eq!(
        s.next_voucher(&k, 7, 0, None, &mut budget)
            .unwrap()
            .voucher
            .cumulative_amount,
        17
    );
}

#[test]
fn resync_follows_only_hints_the_client_could_have_produced() {
    let (k, mut s, mut budget) = signer(6, 1_000, 1_000);
    for _ in 0..3 {
        let v = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
        s.on_paid(v.voucher.cumulative_amount);
    }
    // The answer to the 4th (cumulative 40) was lost; the server holds it.
    let lost = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    assert_eq!(lost.voucher.cumulative_amount, 40);
    assert_eq!((s.accepted, s.signed), (30, 40));
    // A hint above anything signed is a lie: not followed, nothing signed.
    let err = s.resync(1_000).unwrap_err();
    assert!(
        matches!(err, ClientError::UntrustedResync { hint: 1_000, .. }),
        "{err}"
    );
    // Below what the server confirmed: not followed either.
    assert!(s.resync(20).is_err());
    s.settled = 35;
    assert!(
        s.resync(30).is_err(),
        "never below the on-chain settled amount"
    );
    s.settled = 0;
    assert_eq!((s.accepted, s.signed), (30, 40));
    // The server's real last accepted amount: followed.
    s.resync(40).unwrap();
    let next = s.next_voucher(&k, 10, 0, None, &mut budget).unwrap();
    assert_eq!(next.voucher.cumulative_amount, 50);
    assert_eq!(budget.spent, 50);
    // Whatever hints a server sends, the client never signs past its budget.
    let mut tight = Budget::new(55);
    tight.spent = 50;
    s.on_paid(50);
    s.resync(50).unwrap();
    assert!(s.next_voucher(&k, 10, 0, None, &mut tight).is_err());
    assert_eq!(tight.spent, 50);
}

#[test]
fn budget_commits_and_releases() {
    let mut b = Budget::new(100);
    b.commit(60).unwrap();
    assert!(matches!(
        b.commit(50),
        Err(ClientError::BudgetExhausted {
            needed: 50,
            remaining: 40
        })
    ));
    b.release(60);
    b.commit(100).unwrap();
    assert_eq!(b.remaining_to_commit(), 0);
    b.spend(100).unwrap();
    assert!(b.spend(1).is_err());
}

fn requirement(
    network: &str,
    asset: &Pubkey,
    program: &Pubkey,
    amount: &str,
) -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: "paychan".into(),
        network: network.into(),
        amount: amount.into(),
        asset: asset.to_string(),
        pay_to: signing_payee().to_string(),
        max_timeout_seconds: 60,
        extra: Some(
            serde_json::to_value(PaychanExtra {
                program_id: program.to_string(),
                token_program: paychan_sdk::TOKEN_PROGRAM_ID.to_string(),
                decimals: 6,
                grace_period_seconds: 60,
                minimum_deposit: "1000".into(),
                fee_payer: None,
            })
            .unwrap(),
        ),
    }
}

/// A payee key that can sign (on the curve, not small-order).
fn signing_payee() -> Pubkey {
    Pubkey::new_from_array(
        SigningKey::generate(&mut rand::rngs::OsRng)
            .verifying_key()
            .to_bytes(),
    )
}

fn required(accepts: Vec<v2::PaymentRequirements>) -> v2::PaymentRequired {
    v2::PaymentRequired {
        x402_version: 2,
        error: None,
        resource: v2::Resource {
            url: "http://x/paid".into(),
            description: None,
            mime_type: None,
        },
        accepts,
        extensions: None,
    }
}

#[test]
fn offer_selection_ignores_what_does_not_fit() {
    let mint = Pubkey::new_unique();
    let other_mint = Pubkey::new_unique();
    let program = paychan_sdk::ID;
    let filter = OfferFilter {
        network: "solana:local",
        mint: &mint,
        program_id: &program,
        max_price: 100,
        remaining_budget: 50,
        max_grace_period: 3_600,
        payee_must_sign: true,
    };
    let mut wrong_scheme = requirement("solana:local", &mint, &program, "1");
    wrong_scheme.scheme = "exact".into();
    let offers = vec![
        wrong_scheme,
        requirement("solana:other", &mint, &program, "2"),
        requirement("solana:local", &other_mint, &program, "3"),
        requirement("solana:local", &mint, &Pubkey::new_unique(), "4"),
        requirement("solana:local", &mint, &program, "200"),
        requirement("solana:local", &mint, &program, "60"),
        requirement("solana:local", &mint, &program, "-5"),
        requirement("solana:local", &mint, &program, "0"),
    ];
    let err = offer::select(&required(offers.clone()), &filter).unwrap_err();
    let ClientError::NoAcceptableOffer(reasons) = err else {
        panic!("{err}")
    };
    for reason in [
        "scheme",
        "network",
        "asset",
        "program",
        "above the cap",
        "remaining budget",
        "malformed amount",
        "zero price",
    ] {
        assert!(reasons.contains(reason), "{reason} missing from {reasons}");
    }
    // Payees that cannot sign and grace periods above the cap (issue 16, 18).
    let with = |edit: &dyn Fn(&mut v2::PaymentRequirements)| {
        let mut r = requirement("solana:local", &mint, &program, "10");
        edit(&mut r);
        offer::check(&r, &filter)
    };
    let err = with(&|r| r.pay_to = Pubkey::default().to_string()).unwrap_err();
    assert!(err.contains("all-zero key"), "{err}");
    let lenient = OfferFilter {
        payee_must_sign: false,
        ..filter.clone()
    };
    let mut zero = requirement("solana:local", &mint, &program, "10");
    zero.pay_to = Pubkey::default().to_string();
    assert!(
        offer::check(&zero, &lenient)
            .unwrap_err()
            .contains("all-zero key")
    );
    let pda = Pubkey::find_program_address(&[b"payee"], &program).0;
    let err = with(&|r| r.pay_to = pda.to_string()).unwrap_err();
    assert!(err.contains("cannot sign"), "{err}");
    let mut program_owned = requirement("solana:local", &mint, &program, "10");
    program_owned.pay_to = pda.to_string();
    assert_eq!(offer::check(&program_owned, &lenient).unwrap().payee, pda);
    let mut long_grace = requirement("solana:local", &mint, &program, "10");
    let mut extra = long_grace.extra.take().unwrap();
    extra["gracePeriodSeconds"] = 3_601.into();
    long_grace.extra = Some(extra);
    let err = offer::check(&long_grace, &filter).unwrap_err();
    assert!(
        err.contains("grace period 3601 s above the cap 3600 s"),
        "{err}"
    );
    // Among fitting offers, the cheapest wins.
    let mut with_good = offers;
    with_good.push(requirement("solana:local", &mint, &program, "40"));
    with_good.push(requirement("solana:local", &mint, &program, "30"));
    let chosen = offer::select(&required(with_good.clone()), &filter).unwrap();
    assert_eq!(chosen.price, 30);
    assert_eq!(chosen.requirement, with_good[9]);
    assert_eq!(chosen.minimum_deposit, 1_000);
    // The 60 s grace period asked for is raised to the program's minimum.
    assert_eq!(chosen.grace_period, 600);
    assert_eq!(chosen.payee.to_string(), with_good[9].pay_to);
    // The header codec round trip, and its size bound.
    let header = paychan_x402::codec::encode(&required(with_good)).unwrap();
    assert!(offer::decode_required(header.as_bytes()).is_ok());
    let huge = "A".repeat(paychan_x402::codec::MAX_HEADER_LEN + 4);
    assert!(matches!(
        offer::decode_required(huge.as_bytes()),
        Err(ClientError::MalformedOffer(_))
    ));
}

#[test]
fn resync_hints_are_read_from_extensions() {
    let channel = Pubkey::new_unique();
    let mut r = required(vec![]);
    assert_eq!(offer::resync_hint(&r), None);
    r.extensions = Some(serde_json::json!({"paychan": {
        "reason": "invalid_payment_amount", "channel": channel.to_string(),
        "lastAccepted": "1200", "required": "1300"}}));
    let hint = offer::resync_hint(&r).unwrap();
    assert_eq!(hint.channel, Some(channel));
    assert_eq!(hint.last_accepted, Some(1_200));
    r.extensions = Some(serde_json::json!({"paychan": {"lastAccepted": 7}}));
    assert_eq!(offer::resync_hint(&r).unwrap().last_accepted, Some(7));
    r.extensions = Some(serde_json::json!({"paychan": {"lastAccepted": "-1"}}));
    assert_eq!(offer::resync_hint(&r).unwrap().last_accepted, None);
}

#[test]
fn a_thousand_durable_writes_stay_cheap() {
    // The middleware writes the state before every voucher; the 1,000-request
    // end-to-end run depends on this staying in the low milliseconds.
    let (_dir, store, k, mut s) = stored(9, 1_000_000);
    store.save_key(&s.address, &k).unwrap();
    let mut budget = Budget::new(1_000_000);
    let started = std::time::Instant::now();
    for _ in 0..1_000 {
        let v = s.next_voucher(&k, 1, 0, None, &mut budget).unwrap();
        store.save(&s).unwrap();
        s.on_paid(v.voucher.cumulative_amount);
    }
    let elapsed = started.elapsed();
    println!("1,000 sign+persist in {elapsed:?}");
    assert_eq!(store.load_one(&s.address).unwrap().0.signed, 1_000);
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
}
