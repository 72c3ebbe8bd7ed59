//! The facilitator routes (docs/004): `POST /verify` checks a payment without
//! accepting anything, `POST /settle` accepts it into the store (durably) and
//! hands the channel to the settlement queue, `GET /supported` lists the
//! `paychan` kinds.
//!
//! A voucher the store already holds adds nothing: `/verify` and `/settle`
//! answer it `invalid_payment_amount`, so a resource server relying on the
//! facilitator never serves one payment twice. Rejections are answered 200
//! with `isValid: false` / `success: false` (plus `extensions.paychan`:
//! `code`, `field`, `message`, naming what is wrong); a request that is not
//! a facilitator request is 400, a body over 16 KiB 413, a verifier fault 503.
//!
//! `/verify` and `/settle` take a bearer token when one is configured
//! ([`FacilitatorConfig::token`]; `paychan facilitator` refuses to listen
//! beyond loopback without one): each `/settle` makes the payee's settler
//! consider a transaction. A payment for less than
//! [`FacilitatorConfig::min_price`] is refused whatever price the caller
//! names (`invalid_payment_requirements`).
//!
//! With [`router_with_exact`], the facilitator also verifies and settles
//! x402 `exact` payments (`paymentRequirements.scheme` = `"exact"`) with an
//! [`ExactSettler`]: `/verify` checks every rule and simulates, `/settle`
//! co-signs, sends and confirms the transaction before answering with its
//! signature in `transaction` (a second `/settle` of the same transaction
//! is `duplicate_settlement`), and `/supported` lists the `exact` kind with
//! `extra.feePayer`. Refusals carry the reason `@x402/svm` gives
//! ([`super::exact::reason`]) and `extensions.exact`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use paychan_verifier::{MemoryChannels, MemoryStore, Terms, Verifier};
//! use paychan_x402::{scheme::PaychanExtra, server::facilitator::{self, FacilitatorConfig}};
//!
//! # async fn run(terms: Terms, extra: PaychanExtra) -> std::io::Result<()> {
//! let verifier = Arc::new(Verifier::new(MemoryChannels::default(), MemoryStore::default(), terms));
//! let (queue, _settler_rx) = tokio::sync::mpsc::unbounded_channel();
//! let mut config = FacilitatorConfig::new("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", extra, 1_000);
//! config.token = Some("a long random secret".into());
//! let app = facilitator::router(verifier, config, queue);
//! axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8403").await?, app).await
//! # }
//! ```
use std::{collections::BTreeMap, ops::ControlFlow, str::FromStr, sync::Arc};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    response::Response,
    routing::{get, post},
};
use http::{HeaderMap, HeaderValue, StatusCode, header::CONTENT_TYPE};
use paychan_verifier::{
    ChannelSource, CheckError, Pubkey, Receipt, Rejection, SignedVoucher, Verifier, VerifierError,
    VoucherStore,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    bad_request,
    exact::{ExactError, ExactRefusal, ExactSettler, reason},
    in_flight, json_response, overloaded, unavailable, unix_now, v1_network,
};
use crate::{scheme::EXACT, scheme::PaychanExtra, scheme::SCHEME, v1, v2};

/// Largest accepted request body.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// Where `/settle` hands a channel whose latest voucher should go on chain.
pub trait SettleQueue: Send + Sync + 'static {
    /// Queues the channel for settlement (must not block).
    fn enqueue(&self, channel: Pubkey);
}

/// No queue: the settler scans the store on its own schedule.
impl SettleQueue for () {
    fn enqueue(&self, _channel: Pubkey) {}
}

/// A channel into the settler's task; a closed receiver is ignored (the
/// voucher is durable in the store either way).
impl SettleQueue for tokio::sync::mpsc::UnboundedSender<Pubkey> {
    fn enqueue(&self, channel: Pubkey) {
        if self.send(channel).is_err() {
            tracing::warn!(%channel, "settlement queue is closed");
        }
    }
}

impl<Q: SettleQueue> SettleQueue for Arc<Q> {
    fn enqueue(&self, channel: Pubkey) {
        (**self).enqueue(channel);
    }
}

/// What a facilitator serves and whom it serves.
#[derive(Clone, PartialEq, Eq)]
pub struct FacilitatorConfig {
    /// CAIP-2 network id.
    pub network: String,
    /// The `paychan` kind's `extra` (as the paywall offers it).
    pub extra: PaychanExtra,
    /// The bearer token `/verify` and `/settle` require (`Authorization:
    /// Bearer <token>`); `None` leaves them open (loopback only).
    pub token: Option<String>,
    /// The least a payment may pay: the cheapest route's price.
    pub min_price: u64,
}

impl std::fmt::Debug for FacilitatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacilitatorConfig")
            .field("network", &self.network)
            .field("extra", &self.extra)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("min_price", &self.min_price)
            .finish()
    }
}

impl FacilitatorConfig {
    /// A configuration without a token.
    pub fn new(network: impl Into<String>, extra: PaychanExtra, min_price: u64) -> Self {
        Self {
            network: network.into(),
            extra,
            token: None,
            min_price,
        }
    }
}

struct Facilitator<C, S, Q> {
    verifier: Arc<Verifier<C, S>>,
    network: String,
    v1_network: String,
    token: Option<String>,
    min_price: u64,
    queue: Q,
    supported: Bytes,
    exact: Option<Arc<ExactSettler>>,
}

/// The facilitator's `GET /supported` answer, with the `exact` kind (v2)
/// when `exact` settles: its `extra.feePayer`, which `signers` lists too.
#[must_use]
pub fn supported_with_exact(
    network: &str,
    extra: &PaychanExtra,
    exact: Option<&ExactSettler>,
) -> v2::SupportedResponse {
    let mut answer = supported(network, extra);
    if let Some(exact) = exact {
        answer.kinds.push(v2::SupportedKind {
            x402_version: 2,
            scheme: EXACT.to_owned(),
            network: exact.network().to_owned(),
            extra: serde_json::to_value(exact.extra()).ok(),
        });
        let signers = answer.signers.entry("solana:*".to_owned()).or_default();
        let fee_payer = exact.fee_payer().to_string();
        if !signers.contains(&fee_payer) {
            signers.push(fee_payer);
        }
    }
    answer
}

/// The facilitator's `GET /supported` answer.
#[must_use]
pub fn supported(network: &str, extra: &PaychanExtra) -> v2::SupportedResponse {
    let extra = serde_json::to_value(extra).ok();
    let mut signers = BTreeMap::new();
    if let Some(fee_payer) = extra
        .as_ref()
        .and_then(|e| e.get("feePayer"))
        .and_then(Value::as_str)
    {
        signers.insert("solana:*".to_owned(), vec![fee_payer.to_owned()]);
    }
    v2::SupportedResponse {
        kinds: vec![
            v2::SupportedKind {
                x402_version: 2,
                scheme: SCHEME.to_owned(),
                network: network.to_owned(),
                extra: extra.clone(),
            },
            v2::SupportedKind {
                x402_version: 1,
                scheme: SCHEME.to_owned(),
                network: v1_network(network).to_owned(),
                extra,
            },
        ],
        extensions: vec![],
        signers,
    }
}

/// The facilitator's router: `POST /verify`, `POST /settle`, `GET /supported`,
/// with request bodies bounded to [`MAX_BODY_LEN`].
pub fn router<C, S, Q>(verifier: Arc<Verifier<C, S>>, config: FacilitatorConfig, queue: Q) -> Router
where
    C: ChannelSource + 'static,
    S: VoucherStore + 'static,
    Q: SettleQueue,
{
    router_with_exact(verifier, config, queue, None)
}

/// [`router`], settling x402 `exact` payments too when `exact` is given
/// (see the module docs; every `/settle` of one costs the fee payer the
/// transaction's fee).
pub fn router_with_exact<C, S, Q>(
    verifier: Arc<Verifier<C, S>>,
    config: FacilitatorConfig,
    queue: Q,
    exact: Option<Arc<ExactSettler>>,
) -> Router
where
    C: ChannelSource + 'static,
    S: VoucherStore + 'static,
    Q: SettleQueue,
{
    let FacilitatorConfig {
        network,
        extra,
        token,
        min_price,
    } = config;
    let terms = verifier.terms();
    let extra = PaychanExtra {
        grace_period_seconds: terms.min_grace_period,
        minimum_deposit: terms.min_deposit.to_string(),
        ..extra
    };
    let supported = serde_json::to_vec(&supported_with_exact(&network, &extra, exact.as_deref()))
        .unwrap_or_default();
    let state = Arc::new(Facilitator {
        verifier,
        v1_network: v1_network(&network).to_owned(),
        network,
        token,
        min_price: min_price.max(1),
        queue,
        supported: Bytes::from(supported),
        exact,
    });
    Router::new()
        .route("/verify", post(Facilitator::<C, S, Q>::verify))
        .route("/settle", post(Facilitator::<C, S, Q>::settle))
        .route("/supported", get(Facilitator::<C, S, Q>::supported_route))
        .layer(DefaultBodyLimit::max(MAX_BODY_LEN))
        .with_state(state)
}

/// `{x402Version}` first, then the shape of that version.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Versioned {
    x402_version: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Request {
    payment_payload: v1::PaymentPayload,
    payment_requirements: v1::PaymentRequirements,
}

/// A checked request: a `paychan` voucher or an `exact` transaction.
enum Parsed {
    Paychan(Payment),
    Exact(ExactPayment),
}

/// An `exact` request, checked against this facilitator.
struct ExactPayment {
    settler: Arc<ExactSettler>,
    network: String,
    transaction: String,
    price: u64,
    memo: Option<String>,
}

/// What both versions say, once checked against this facilitator.
struct Payment {
    /// The network to answer with (CAIP-2, or the v1 name).
    network: String,
    voucher: SignedVoucher,
    price: u64,
}

/// Why a request cannot be checked at all (400) or cannot pay (invalid).
enum Invalid {
    /// 400: not a facilitator request.
    BadRequest(String),
    /// The payment is not acceptable: `isValid: false` / `success: false`,
    /// the x402 reason and the field at fault.
    Reason(&'static str, Detail),
}

/// What exactly is wrong with a payment (`extensions.paychan` of the
/// answer; `extensions.exact` for an `exact` payment).
#[derive(Clone, Debug)]
struct Detail {
    code: &'static str,
    field: Option<String>,
    message: String,
    extension: &'static str,
}

impl Detail {
    fn new(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field.to_owned()),
            message: message.into(),
            extension: "paychan",
        }
    }

    fn of(r: &Rejection) -> Self {
        Self {
            code: r.code(),
            field: Some(payload_field(r.field()).to_owned()),
            message: r.to_string(),
            extension: "paychan",
        }
    }

    /// An `exact` refusal, about `field` of the request.
    fn exact(r: &ExactRefusal, field: &'static str) -> Self {
        Self {
            code: r.reason,
            field: Some(field.to_owned()),
            message: r.message.clone(),
            extension: "exact",
        }
    }

    /// `/verify`'s `isValid: false` for the x402 `reason`.
    fn invalid(&self, reason: &str, payer: Option<String>) -> v2::VerifyResponse {
        v2::VerifyResponse {
            is_valid: false,
            invalid_reason: Some(reason.to_owned()),
            invalid_message: Some(self.message.clone()),
            payer,
            extensions: Some(self.extensions()),
        }
    }

    /// `/settle`'s `success: false` for the x402 `reason`, on `network`.
    fn failed(
        &self,
        reason: &str,
        payer: Option<String>,
        transaction: String,
        network: String,
    ) -> v2::SettleResponse {
        v2::SettleResponse {
            success: false,
            error_reason: Some(reason.to_owned()),
            error_message: Some(self.message.clone()),
            payer,
            transaction,
            network,
            amount: None,
            extensions: Some(self.extensions()),
        }
    }

    fn extensions(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert(
            self.extension.to_owned(),
            json!({ "code": self.code, "field": self.field, "message": self.message }),
        );
        Value::Object(map)
    }
}

impl<C, S, Q> Facilitator<C, S, Q>
where
    C: ChannelSource + 'static,
    S: VoucherStore + 'static,
    Q: SettleQueue,
{
    fn parse(&self, body: &[u8]) -> Result<Parsed, Invalid> {
        let bad = |e: serde_json::Error| Invalid::BadRequest(e.to_string());
        let version: Versioned = serde_json::from_slice(body).map_err(bad)?;
        let (
            network,
            req_scheme,
            req_network,
            amount,
            pay_to,
            asset,
            pay_scheme,
            pay_network,
            payload,
        ) = match version.x402_version {
            2 => {
                let r: v2::FacilitatorRequest = serde_json::from_slice(body).map_err(bad)?;
                let (p, q) = (r.payment_payload, r.payment_requirements);
                if p.x402_version != 2 {
                    return Err(Invalid::BadRequest(
                        "paymentPayload.x402Version must be 2".into(),
                    ));
                }
                if let Some(settler) = &self.exact
                    && q.scheme == EXACT
                {
                    return self.parse_exact(settler, p, q).map(Parsed::Exact);
                }
                (
                    self.network.clone(),
                    q.scheme,
                    q.network,
                    q.amount,
                    q.pay_to,
                    q.asset,
                    p.accepted.scheme,
                    p.accepted.network,
                    p.payload,
                )
            }
            1 => {
                let r: V1Request = serde_json::from_slice(body).map_err(bad)?;
                let (p, q) = (r.payment_payload, r.payment_requirements);
                if p.x402_version != 1 {
                    return Err(Invalid::BadRequest(
                        "paymentPayload.x402Version must be 1".into(),
                    ));
                }
                (
                    self.v1_network.clone(),
                    q.scheme,
                    q.network,
                    q.max_amount_required,
                    q.pay_to,
                    q.asset,
                    p.scheme,
                    p.network,
                    p.payload,
                )
            }
            v => return Err(Invalid::BadRequest(format!("unsupported x402Version {v}"))),
        };
        let price = parse_amount(&amount).ok_or_else(|| {
            Invalid::BadRequest("paymentRequirements amount is not a decimal u64".into())
        })?;
        let reason = |reason, code, field, message: String| {
            Err(Invalid::Reason(reason, Detail::new(code, field, message)))
        };
        if req_scheme != SCHEME {
            return reason(
                "unsupported_scheme",
                "unsupported_scheme",
                "paymentRequirements.scheme",
                format!("scheme {req_scheme:?} is not served; use \"{SCHEME}\""),
            );
        }
        if pay_scheme != SCHEME {
            return reason(
                "unsupported_scheme",
                "unsupported_scheme",
                "paymentPayload.accepted.scheme",
                format!("scheme {pay_scheme:?} is not served; use \"{SCHEME}\""),
            );
        }
        let ours = |n: &str| n == self.network || n == self.v1_network;
        for (network, field) in [
            (&req_network, "paymentRequirements.network"),
            (&pay_network, "paymentPayload.accepted.network"),
        ] {
            if !ours(network) {
                return reason(
                    "invalid_network",
                    "wrong_network",
                    field,
                    format!("network must be {}", self.network),
                );
            }
        }
        let terms = self.verifier.terms();
        if Pubkey::from_str(&pay_to).ok() != Some(terms.payee) {
            return reason(
                "invalid_scheme",
                "wrong_payee",
                "paymentRequirements.payTo",
                format!("this facilitator settles for {} only", terms.payee),
            );
        }
        if Pubkey::from_str(&asset).ok() != Some(terms.mint) {
            return reason(
                "invalid_scheme",
                "wrong_mint",
                "paymentRequirements.asset",
                format!("this facilitator settles {} only", terms.mint),
            );
        }
        if price < self.min_price {
            return reason(
                "invalid_payment_requirements",
                "price_below_minimum",
                "paymentRequirements.amount",
                format!(
                    "amount {price} is below the least this payee charges, {}",
                    self.min_price
                ),
            );
        }
        let voucher = crate::payment::decode_payload_value(&payload).map_err(|e| {
            Invalid::Reason(
                "invalid_payload",
                Detail {
                    code: "malformed",
                    field: e.field().map(str::to_owned),
                    message: e.to_string(),
                    extension: "paychan",
                },
            )
        })?;
        Ok(Parsed::Paychan(Payment {
            network,
            voucher,
            price,
        }))
    }

    /// An `exact` request, checked in the reference's order (scheme,
    /// network, fee payer), then against this payee, mint and minimum price.
    fn parse_exact(
        &self,
        settler: &Arc<ExactSettler>,
        p: v2::PaymentPayload,
        q: v2::PaymentRequirements,
    ) -> Result<ExactPayment, Invalid> {
        let refuse = |reason: &'static str, field: &'static str, message: String| {
            Err(Invalid::Reason(
                reason,
                Detail::exact(&ExactRefusal::new(reason, message), field),
            ))
        };
        if p.accepted.scheme != EXACT {
            return refuse(
                reason::UNSUPPORTED_SCHEME,
                "paymentPayload.accepted.scheme",
                format!(
                    "the payment is {:?}; the requirements are exact",
                    p.accepted.scheme
                ),
            );
        }
        if p.accepted.network != q.network || q.network != settler.network() {
            return refuse(
                reason::NETWORK_MISMATCH,
                "paymentRequirements.network",
                format!(
                    "the payment and the requirements must both be on {}",
                    settler.network()
                ),
            );
        }
        let extra = q.extra.as_ref();
        let Some(fee_payer) = extra
            .and_then(|e| e.get("feePayer"))
            .and_then(Value::as_str)
        else {
            return refuse(
                reason::MISSING_FEE_PAYER,
                "paymentRequirements.extra.feePayer",
                "the requirements name no fee payer".into(),
            );
        };
        if Pubkey::from_str(fee_payer).ok() != Some(settler.fee_payer()) {
            return refuse(
                reason::FEE_PAYER_NOT_MANAGED,
                "paymentRequirements.extra.feePayer",
                format!("this facilitator signs as {} only", settler.fee_payer()),
            );
        }
        if Pubkey::from_str(&q.pay_to).ok() != Some(settler.pay_to()) {
            return refuse(
                reason::RECIPIENT_MISMATCH,
                "paymentRequirements.payTo",
                format!("this facilitator settles for {} only", settler.pay_to()),
            );
        }
        if Pubkey::from_str(&q.asset).ok() != Some(settler.mint()) {
            return refuse(
                reason::MINT_MISMATCH,
                "paymentRequirements.asset",
                format!("this facilitator settles {} only", settler.mint()),
            );
        }
        let price = parse_amount(&q.amount).ok_or_else(|| {
            Invalid::BadRequest("paymentRequirements amount is not a decimal u64".into())
        })?;
        if price < self.min_price {
            return Err(Invalid::Reason(
                "invalid_payment_requirements",
                Detail {
                    extension: "exact",
                    ..Detail::new(
                        "price_below_minimum",
                        "paymentRequirements.amount",
                        format!(
                            "amount {price} is below the least this payee charges, {}",
                            self.min_price
                        ),
                    )
                },
            ));
        }
        let memo = match extra.and_then(|e| e.get("memo")) {
            None | Some(Value::Null) => settler.memo().map(str::to_owned),
            Some(Value::String(m)) if m.len() <= crate::scheme::MAX_EXACT_MEMO_BYTES => {
                Some(m.clone()).filter(|m| !m.is_empty())
            }
            Some(_) => {
                return Err(Invalid::BadRequest(format!(
                    "paymentRequirements.extra.memo must be a string of at most {} bytes",
                    crate::scheme::MAX_EXACT_MEMO_BYTES
                )));
            }
        };
        let transaction = crate::payment::decode_exact_payload_value(&p.payload).map_err(|e| {
            Invalid::Reason(
                reason::TRANSACTION_COULD_NOT_BE_DECODED,
                Detail {
                    code: reason::TRANSACTION_COULD_NOT_BE_DECODED,
                    field: e.field().map(str::to_owned),
                    message: e.to_string(),
                    extension: "exact",
                },
            )
        })?;
        Ok(ExactPayment {
            settler: settler.clone(),
            network: q.network,
            transaction,
            price,
            memo,
        })
    }

    /// Whether the request carries the configured bearer token (compared in
    /// constant time); always true without one.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let (a, b) = (presented.as_bytes(), token.as_bytes());
        let diff = a
            .iter()
            .zip(b)
            .fold(a.len() ^ b.len(), |acc, (x, y)| acc | usize::from(x ^ y));
        diff == 0
    }

    /// An authorized request's `paychan` payment, or its answer already:
    /// 401, 400, the answer to an `exact` payment (`exact`), or `refused`'s
    /// to a payment refused before its check.
    async fn paychan_payment<F: Future<Output = Response>>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        exact: impl FnOnce(ExactPayment) -> F,
        refused: impl FnOnce(&'static str, &Detail) -> Response,
    ) -> ControlFlow<Response, Payment> {
        if !self.authorized(headers) {
            return ControlFlow::Break(unauthorized());
        }
        match self.parse(body) {
            Ok(Parsed::Paychan(p)) => ControlFlow::Continue(p),
            Ok(Parsed::Exact(e)) => ControlFlow::Break(exact(e).await),
            Err(Invalid::BadRequest(m)) => ControlFlow::Break(bad_request(&m)),
            Err(Invalid::Reason(reason, detail)) => ControlFlow::Break(refused(reason, &detail)),
        }
    }

    async fn verify(State(f): State<Arc<Self>>, headers: HeaderMap, body: Bytes) -> Response {
        let refused =
            |reason, detail: &Detail| json_response(StatusCode::OK, &detail.invalid(reason, None));
        let payment = match f
            .paychan_payment(&headers, &body, verify_exact, refused)
            .await
        {
            ControlFlow::Continue(p) => p,
            ControlFlow::Break(answer) => return answer,
        };
        let result = f
            .verifier
            .verify_only(&payment.voucher, payment.price, unix_now())
            .await;
        match classify(result) {
            Checked::Valid(r) => json_response(
                StatusCode::OK,
                &v2::VerifyResponse::valid(r.payer.to_string()),
            ),
            Checked::Invalid(reason, detail) => {
                json_response(StatusCode::OK, &detail.invalid(reason, None))
            }
            Checked::Overloaded => overloaded(),
            Checked::Fault => unavailable(),
        }
    }

    async fn settle(State(f): State<Arc<Self>>, headers: HeaderMap, body: Bytes) -> Response {
        let failed = |reason, detail: &Detail, network| {
            json_response(
                StatusCode::OK,
                &detail.failed(reason, None, String::new(), network),
            )
        };
        let refused = |reason, detail: &Detail| failed(reason, detail, f.network.clone());
        let payment = match f
            .paychan_payment(&headers, &body, settle_exact, refused)
            .await
        {
            ControlFlow::Continue(p) => p,
            ControlFlow::Break(answer) => return answer,
        };
        let result = f
            .verifier
            .check_priced(&payment.voucher, payment.price, unix_now())
            .await;
        match classify(result) {
            Checked::Valid(r) => {
                f.queue.enqueue(r.channel);
                json_response(
                    StatusCode::OK,
                    &v2::SettleResponse::settled(
                        r.payer.to_string(),
                        String::new(),
                        payment.network,
                        r.charged.to_string(),
                    ),
                )
            }
            Checked::Invalid(reason, detail) => failed(reason, &detail, payment.network),
            Checked::Overloaded => overloaded(),
            Checked::Fault => unavailable(),
        }
    }

    async fn supported_route(State(f): State<Arc<Self>>) -> Response {
        let mut res = Response::new(Body::from(f.supported.clone()));
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

/// 401 for `/verify` and `/settle` without the facilitator's token.
fn unauthorized() -> Response {
    let mut res = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": "unauthorized", "message": "this facilitator needs `Authorization: Bearer <token>`" }),
    );
    res.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer"),
    );
    res
}

/// A canonical decimal `u64` (no sign, no leading zeros).
fn parse_amount(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// What checking a payment gave.
enum Checked {
    /// It pays.
    Valid(Receipt),
    /// The x402 reason it does not, and what exactly is wrong.
    Invalid(&'static str, Detail),
    /// Too many channel loads in flight (503 with `Retry-After`).
    Overloaded,
    /// The verifier could not decide (503).
    Fault,
}

fn classify(result: Result<Receipt, CheckError>) -> Checked {
    match result {
        // A voucher accepted before pays nothing new: like a resubmitted
        // transaction, it does not verify or settle twice.
        Ok(r) if r.duplicate => Checked::Invalid(
            "invalid_payment_amount",
            Detail::new(
                "already_accepted",
                "paymentPayload.payload.voucher.cumulativeAmount",
                "this voucher was accepted before; sign the next cumulative amount",
            ),
        ),
        Ok(r) => Checked::Valid(r),
        Err(CheckError::Rejected(r)) => {
            tracing::debug!(reason = r.reason(), "facilitator: payment rejected: {r}");
            Checked::Invalid(r.reason(), Detail::of(&r))
        }
        Err(CheckError::Fault(VerifierError::Overloaded)) => Checked::Overloaded,
        Err(CheckError::Fault(e)) => {
            tracing::warn!("facilitator: verifier unavailable: {e}");
            Checked::Fault
        }
    }
}

/// A [`Rejection::field`] as a path in the facilitator request.
fn payload_field(field: &'static str) -> &'static str {
    match field {
        "voucher.channelId" => "paymentPayload.payload.voucher.channelId",
        "voucher.expiresAt" => "paymentPayload.payload.voucher.expiresAt",
        "voucher.cumulativeAmount" => "paymentPayload.payload.voucher.cumulativeAmount",
        "signer" => "paymentPayload.payload.signer",
        "signature" => "paymentPayload.payload.signature",
        // The channel's on-chain state (`channel.deposit`, …).
        other => other,
    }
}

/// `/verify` of an `exact` payment: every rule and a simulation.
async fn verify_exact(e: ExactPayment) -> Response {
    match e
        .settler
        .verify(&e.transaction, e.price, e.memo.as_deref())
        .await
    {
        Ok(v) => json_response(
            StatusCode::OK,
            &v2::VerifyResponse::valid(v.payer.to_string()),
        ),
        Err(ExactError::Refused(r)) => json_response(
            StatusCode::OK,
            &Detail::exact(&r, "paymentPayload.payload.transaction")
                .invalid(r.reason, r.payer.map(|p| p.to_string())),
        ),
        Err(e) => exact_fault(&e),
    }
}

/// `/settle` of an `exact` payment: on chain (`confirmed`) before the answer.
async fn settle_exact(e: ExactPayment) -> Response {
    let failed = |r: &ExactRefusal, transaction: String| {
        Detail::exact(r, "paymentPayload.payload.transaction").failed(
            r.reason,
            r.payer.map(|p| p.to_string()),
            transaction,
            e.network.clone(),
        )
    };
    match e
        .settler
        .settle(&e.transaction, e.price, e.memo.as_deref())
        .await
    {
        Ok(c) if c.first => json_response(
            StatusCode::OK,
            &v2::SettleResponse::settled(
                c.settlement.payer.to_string(),
                c.settlement.signature.to_string(),
                e.network.clone(),
                c.settlement.amount.to_string(),
            ),
        ),
        Ok(c) => {
            let r = ExactRefusal {
                payer: Some(c.settlement.payer),
                ..ExactRefusal::new(
                    reason::DUPLICATE_SETTLEMENT,
                    format!("{} was settled before", c.settlement.signature),
                )
            };
            json_response(StatusCode::OK, &failed(&r, String::new()))
        }
        Err(ExactError::Refused(r)) => json_response(StatusCode::OK, &failed(&r, String::new())),
        Err(ExactError::Pending { signature }) => {
            let r = ExactRefusal::new(
                reason::SETTLEMENT_PENDING,
                format!("{signature} was sent and is not confirmed yet; /settle it again"),
            );
            json_response(StatusCode::OK, &failed(&r, signature.to_string()))
        }
        Err(e) => exact_fault(&e),
    }
}

/// An `exact` settlement that could not be decided (409 / 503).
fn exact_fault(e: &ExactError) -> Response {
    match e {
        ExactError::InFlight => in_flight(),
        ExactError::Overloaded => overloaded(),
        other => {
            tracing::warn!("facilitator: exact settlement unavailable: {other}");
            unavailable()
        }
    }
}
