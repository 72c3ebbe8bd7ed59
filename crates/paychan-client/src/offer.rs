//! Reading a 402: decoding `PAYMENT-REQUIRED`, choosing a `paychan` offer,
//! and the resynchronisation hint.
use std::str::FromStr;

use paychan_sdk::Pubkey;
use paychan_x402::{codec, scheme, v2};
use serde_json::Value;

use crate::error::ClientError;

/// Most requirements of one 402 looked at.
pub const MAX_ACCEPTS: usize = 16;
/// Shortest grace period the program accepts, seconds.
pub const MIN_GRACE_PERIOD_SECS: i64 = paychan_sdk::constants::MIN_GRACE_PERIOD_SECS;
/// Longest grace period the program accepts, seconds.
pub const MAX_GRACE_PERIOD_SECS: i64 = paychan_sdk::constants::MAX_GRACE_PERIOD_SECS;

/// A `paychan` requirement this client can pay, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// The requirement as received (echoed in `accepted`).
    pub requirement: v2::PaymentRequirements,
    /// The resource the 402 was about.
    pub resource: Option<v2::Resource>,
    /// The payee.
    pub payee: Pubkey,
    /// Price of one request.
    pub price: u64,
    /// Grace period to open channels with (clamped to the program's range).
    pub grace_period: i64,
    /// Smallest deposit the server accepts.
    pub minimum_deposit: u64,
    /// The mint's token program.
    pub token_program: Pubkey,
}

/// What an acceptable offer must match.
#[derive(Clone, Debug)]
pub struct OfferFilter<'a> {
    /// CAIP-2 network.
    pub network: &'a str,
    /// The mint.
    pub mint: &'a Pubkey,
    /// The paychan program.
    pub program_id: &'a Pubkey,
    /// Price cap per request.
    pub max_price: u64,
    /// Value still payable within the budget.
    pub remaining_budget: u64,
    /// Longest grace period accepted, seconds: how long a refund may take
    /// when the payee disappears.
    pub max_grace_period: i64,
    /// Refuse payees that cannot sign a transaction themselves (keys off the
    /// Ed25519 curve, such as program-derived addresses, and small-order
    /// keys): such a payee can never close a channel at once, so a refund
    /// always waits for the whole grace period. The all-zero key is refused
    /// whatever this says.
    pub payee_must_sign: bool,
}

/// Decodes a `PAYMENT-REQUIRED` header value (bounded by the codec).
pub fn decode_required(header: &[u8]) -> Result<v2::PaymentRequired, ClientError> {
    codec::decode(header).map_err(|e| ClientError::MalformedOffer(e.to_string()))
}

/// A decimal amount of base units (digits only, fits a `u64`).
pub(crate) fn parse_amount(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Checks one requirement against the filter.
pub fn check(
    requirement: &v2::PaymentRequirements,
    filter: &OfferFilter<'_>,
) -> Result<Offer, String> {
    if requirement.scheme != scheme::SCHEME {
        return Err(format!("scheme {:?}", requirement.scheme));
    }
    if requirement.network != filter.network {
        return Err(format!("network {:?}", requirement.network));
    }
    let mint = Pubkey::from_str(&requirement.asset).map_err(|_| "asset is not a key")?;
    if mint != *filter.mint {
        return Err(format!("asset {mint}"));
    }
    let payee = Pubkey::from_str(&requirement.pay_to).map_err(|_| "payTo is not a key")?;
    if payee == Pubkey::default() {
        return Err("payTo is the all-zero key, which nobody can sign for".into());
    }
    if filter.payee_must_sign
        && (!payee.is_on_curve() || paychan_voucher::is_weak_signer(&payee.to_bytes()))
    {
        return Err(format!(
            "payTo {payee} cannot sign (off the curve or a small-order key)"
        ));
    }
    let extra: scheme::PaychanExtra = requirement
        .extra
        .clone()
        .ok_or("no extra")
        .and_then(|e| serde_json::from_value(e).map_err(|_| "malformed extra"))?;
    let program = Pubkey::from_str(&extra.program_id).map_err(|_| "programId is not a key")?;
    if program != *filter.program_id {
        return Err(format!("program {program}"));
    }
    let token_program =
        Pubkey::from_str(&extra.token_program).map_err(|_| "tokenProgram is not a key")?;
    let price = parse_amount(&requirement.amount).ok_or("malformed amount")?;
    if price == 0 {
        return Err("zero price".into());
    }
    if price > filter.max_price {
        return Err(format!("price {price} above the cap {}", filter.max_price));
    }
    if price > filter.remaining_budget {
        return Err(format!(
            "price {price} above the remaining budget {}",
            filter.remaining_budget
        ));
    }
    if extra.grace_period_seconds > filter.max_grace_period {
        return Err(format!(
            "grace period {} s above the cap {} s",
            extra.grace_period_seconds, filter.max_grace_period
        ));
    }
    let minimum_deposit = parse_amount(&extra.minimum_deposit).ok_or("malformed minimumDeposit")?;
    Ok(Offer {
        requirement: requirement.clone(),
        resource: None,
        payee,
        price,
        grace_period: extra
            .grace_period_seconds
            .clamp(MIN_GRACE_PERIOD_SECS, MAX_GRACE_PERIOD_SECS),
        minimum_deposit,
        token_program,
    })
}

/// The cheapest acceptable `paychan` offer of a 402 (the first
/// [`MAX_ACCEPTS`] requirements are looked at).
pub fn select(
    required: &v2::PaymentRequired,
    filter: &OfferFilter<'_>,
) -> Result<Offer, ClientError> {
    let mut reasons = Vec::new();
    let mut best: Option<Offer> = None;
    for requirement in required.accepts.iter().take(MAX_ACCEPTS) {
        match check(requirement, filter) {
            Ok(offer) if best.as_ref().is_none_or(|b| offer.price < b.price) => {
                best = Some(offer);
            }
            Ok(_) => {}
            Err(reason) => reasons.push(reason),
        }
    }
    match best {
        Some(mut offer) => {
            offer.resource = Some(required.resource.clone());
            Ok(offer)
        }
        None if reasons.is_empty() => Err(ClientError::NoAcceptableOffer("no offers".into())),
        None => Err(ClientError::NoAcceptableOffer(reasons.join("; "))),
    }
}

/// `extensions.paychan` of a rejection 402: the channel and, when the
/// increment was too small, the server's last accepted cumulative amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResyncHint {
    /// The channel the rejection is about.
    pub channel: Option<Pubkey>,
    /// The server's `lastAccepted`.
    pub last_accepted: Option<u64>,
    /// The rejection's reason.
    pub reason: Option<String>,
}

fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_amount(s),
        _ => None,
    }
}

/// Reads `extensions.paychan` of a 402, if any.
#[must_use]
pub fn resync_hint(required: &v2::PaymentRequired) -> Option<ResyncHint> {
    let paychan = required.extensions.as_ref()?.get("paychan")?;
    Some(ResyncHint {
        channel: paychan
            .get("channel")
            .and_then(Value::as_str)
            .and_then(|s| Pubkey::from_str(s).ok()),
        last_accepted: paychan.get("lastAccepted").and_then(value_u64),
        reason: paychan
            .get("reason")
            .and_then(Value::as_str)
            .map(|s| s.chars().take(64).collect()),
    })
}
