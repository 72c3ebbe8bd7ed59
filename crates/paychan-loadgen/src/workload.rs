//! The benchmark's channels and vouchers, derived deterministically so the
//! server process and the load process agree without talking.
use ed25519_dalek::SigningKey;
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::ChannelSnapshot;
use paychan_voucher::{VoucherV1, json::SignedVoucherJson, sign_v1};
use paychan_x402::{codec, scheme, v2};

/// Price of one paid request, base units.
pub const PRICE: u64 = 1_000;
/// Network id the benchmark's offers carry.
pub const NETWORK: &str = "solana:paychanloadgen00000000000000";
/// Deposit of every benchmark channel (never the limit).
pub const DEPOSIT: u64 = u64::MAX / 4;

/// The payee of every channel.
pub fn payee() -> Pubkey {
    Pubkey::new_from_array([0x11; 32])
}

/// The mint of every channel.
pub fn mint() -> Pubkey {
    Pubkey::new_from_array([0x22; 32])
}

/// Voucher signer of channel `i`.
pub fn signing_key(i: usize) -> SigningKey {
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SigningKey::from_bytes(&seed)
}

/// Address of channel `i`.
pub fn channel(i: usize) -> Pubkey {
    let mut bytes = [0xc3; 32];
    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Pubkey::new_from_array(bytes)
}

/// What the server knows about channel `i`.
pub fn snapshot(i: usize) -> ChannelSnapshot {
    ChannelSnapshot {
        address: channel(i),
        program_id: paychan_sdk::ID,
        payer: Pubkey::new_from_array([0x33; 32]),
        payee: payee(),
        mint: mint(),
        signer: Pubkey::new_from_array(signing_key(i).verifying_key().to_bytes()),
        deposit: DEPOSIT,
        settled: 0,
        status: ChannelStatus::Open,
        grace_period: 86_400,
        grace_ends_at: None,
    }
}

/// The offer's `extra`.
pub fn extra() -> scheme::PaychanExtra {
    scheme::PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: paychan_sdk::TOKEN_PROGRAM_ID.to_string(),
        decimals: 6,
        grace_period_seconds: 86_400,
        minimum_deposit: "1000000".into(),
        fee_payer: Some(payee().to_string()),
    }
}

/// The benchmark server's terms: what `extra()` advertises.
pub fn terms() -> paychan_verifier::Terms {
    let mut terms = paychan_verifier::Terms::new(paychan_sdk::ID, payee(), mint(), PRICE);
    terms.min_grace_period = 86_400;
    terms.min_deposit = 1_000_000;
    terms
}

/// The `paychan` requirement the benchmark server offers (the paywall's own builder).
pub fn requirements() -> v2::PaymentRequirements {
    paychan_x402::server::requirements(&terms(), NETWORK, &extra(), PRICE)
}

/// `PAYMENT-SIGNATURE` values for channel `i`, cumulative `PRICE × (1..=n)`.
pub fn headers(i: usize, n: usize) -> Result<Vec<String>, String> {
    let key = signing_key(i);
    let accepted = requirements();
    let mut out = Vec::with_capacity(n);
    for k in 1..=n as u64 {
        let voucher = VoucherV1 {
            channel_id: channel(i).to_bytes(),
            cumulative_amount: PRICE * k,
            expires_at: 0,
        };
        let signed = sign_v1(&key, &voucher);
        let payload = SignedVoucherJson::try_from(&signed).map_err(|e| e.to_string())?;
        let envelope = v2::PaymentPayload {
            x402_version: 2,
            resource: None,
            accepted: accepted.clone(),
            payload: serde_json::to_value(payload).map_err(|e| e.to_string())?,
            extensions: None,
        };
        out.push(codec::encode(&envelope).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
