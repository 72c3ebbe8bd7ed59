//! The reqwest middleware: pays `paychan` x402 offers (docs/004).
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use paychan_voucher::{SignedVoucher, SignedVoucherJson};
use paychan_x402::{
    HEADER_PAYMENT_REQUIRED, HEADER_PAYMENT_RESPONSE, HEADER_PAYMENT_SIGNATURE, HEADER_X_PAYMENT,
    HEADER_X_PAYMENT_RESPONSE, codec, v2,
};
use reqwest::{Request, Response, Url, redirect};
use reqwest_middleware::{Middleware, Next};

use crate::{
    client::{Lease, PaychanClient},
    error::ClientError,
    offer::{Offer, decode_required, parse_amount, resync_hint},
};

/// `Idempotency-Key`.
pub const HEADER_IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Longest key (method and URL) under which an offer is remembered for
/// pre-payment; requests to longer URLs are paid after their 402 each time.
pub const MAX_RESOURCE_KEY_LEN: usize = 2048;

/// Pays `paychan` offers of 402 answers, then retries once (plus once more
/// when the paid retry is refused with a trusted `lastAccepted` hint);
/// pre-pays requests (same method, same full URL) whose offer it has seen.
/// Requests that already carry a payment header pass through untouched; a
/// 402 it cannot pay (no acceptable offer, a body that cannot be cloned, an
/// untrusted resync hint, an answer from another origin than the request's)
/// is returned as is. A payment counts as made only when the answer
/// confirms it (see [`PaymentReceipt`]); otherwise the voucher is kept as a
/// credit and re-sent by the next request on its channel. Chain and state
/// failures are `reqwest_middleware::Error::Middleware` wrapping a
/// [`ClientError`].
///
/// Use it through [`PaychanClient::http_client`] (or
/// [`PaychanClient::http_client_builder`]): reqwest follows redirects below
/// the middleware and would carry the payment header to whatever host a
/// server redirects to; those clients refuse redirects that leave the
/// request's origin ([`same_origin_redirects`]).
#[derive(Clone, Debug)]
pub struct PaychanMiddleware {
    client: PaychanClient,
}

/// What the payment headers of an answer to a paid request say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentReceipt {
    /// `PAYMENT-RESPONSE` (or the v1 `X-PAYMENT-RESPONSE`) decodes, says
    /// `success: true` and charged at most the voucher's increment (an
    /// `amount` left out is taken as the increment).
    Confirmed {
        /// The amount charged, as the server says.
        charged: u64,
    },
    /// No `PAYMENT-RESPONSE` nor `X-PAYMENT-RESPONSE`.
    Missing,
    /// The header does not decode.
    Malformed(String),
    /// `success: false`.
    Failed(Option<String>),
    /// `amount` is not a decimal amount.
    BadAmount(String),
    /// `amount` is more than the voucher adds to what the server confirmed
    /// before.
    Overcharged {
        /// The amount the server says it charged.
        charged: u64,
        /// What the voucher adds.
        increment: u64,
    },
}

impl PaymentReceipt {
    /// Reads the receipt of an answer to a voucher adding `increment` to
    /// what the server confirmed before. The v2 header wins over the v1 one.
    #[must_use]
    pub fn read(headers: &HeaderMap, increment: u64) -> Self {
        let Some(header) = headers
            .get(HEADER_PAYMENT_RESPONSE)
            .or_else(|| headers.get(HEADER_X_PAYMENT_RESPONSE))
        else {
            return Self::Missing;
        };
        let settle: v2::SettleResponse = match codec::decode(header.as_bytes()) {
            Ok(s) => s,
            Err(e) => return Self::Malformed(e.to_string()),
        };
        if !settle.success {
            return Self::Failed(settle.error_reason.map(|r| r.chars().take(64).collect()));
        }
        let charged = match settle.amount.as_deref() {
            None => increment,
            Some(a) => match parse_amount(a) {
                Some(charged) => charged,
                None => return Self::BadAmount(a.chars().take(32).collect()),
            },
        };
        if charged > increment {
            return Self::Overcharged { charged, increment };
        }
        Self::Confirmed { charged }
    }
}

/// How the server answered a paid request.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Confirmed by its receipt: the voucher was accepted.
    Paid,
    /// Refused (402, or a 400 without a receipt: the payment header itself).
    Rejected,
    /// A 5xx: kept as a credit.
    ServerError(StatusCode),
    /// The answer comes from another origin than the request's (a redirect
    /// followed by a client that is not [`PaychanClient::http_client`]):
    /// nothing it says is about our payment; kept as a credit.
    OtherOrigin,
    /// Served without a confirming receipt: kept as a credit.
    Unconfirmed(PaymentReceipt),
}

/// Whether two URLs share an origin (scheme, host, port).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn outcome(response: &Response, origin: &Url, increment: u64) -> Outcome {
    let status = response.status();
    let headers = response.headers();
    if !same_origin(response.url(), origin) {
        Outcome::OtherOrigin
    } else if status == StatusCode::PAYMENT_REQUIRED {
        Outcome::Rejected
    } else if status.is_server_error() {
        Outcome::ServerError(status)
    } else if status == StatusCode::BAD_REQUEST
        && !headers.contains_key(HEADER_PAYMENT_RESPONSE)
        && !headers.contains_key(HEADER_X_PAYMENT_RESPONSE)
    {
        // The payment header itself was refused (invalid_payload).
        Outcome::Rejected
    } else {
        match PaymentReceipt::read(headers, increment) {
            PaymentReceipt::Confirmed { .. } => Outcome::Paid,
            other => Outcome::Unconfirmed(other),
        }
    }
}

/// The key an offer is remembered under: the method and the full URL
/// (scheme, host, port, path and query; not the credentials nor the
/// fragment). `None` (not remembered) above [`MAX_RESOURCE_KEY_LEN`].
fn resource_key(method: &Method, url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let mut key = format!("{method} {}://{host}:{port}{}", url.scheme(), url.path());
    if let Some(query) = url.query() {
        key.push('?');
        key.push_str(query);
    }
    (key.len() <= MAX_RESOURCE_KEY_LEN).then_some(key)
}

/// The redirect policy of [`PaychanClient::http_client`]: redirects within
/// the origin (scheme, host and port) of the request are followed (at most
/// 10, as reqwest's default policy); the first one leading to another
/// origin is not followed and its 3xx answer is returned as is, so no
/// header of the request (`PAYMENT-SIGNATURE`, `X-PAYMENT`,
/// `Idempotency-Key`, or any other) reaches another origin. It applies to
/// every request of that client, paid or not.
#[must_use]
pub fn same_origin_redirects() -> redirect::Policy {
    let within = redirect::Policy::default();
    redirect::Policy::custom(move |attempt| {
        let leaves = attempt
            .previous()
            .first()
            .is_none_or(|first| !same_origin(first, attempt.url()));
        if leaves {
            attempt.stop()
        } else {
            within.redirect(attempt)
        }
    })
}

fn idempotency_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn mw(e: ClientError) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(e)
}

/// `PAYMENT-SIGNATURE` for `voucher` under `offer`.
pub fn payment_header(offer: &Offer, voucher: &SignedVoucher) -> Result<HeaderValue, ClientError> {
    let payload = SignedVoucherJson::try_from(voucher)?;
    let payment = v2::PaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: offer.requirement.clone(),
        payload: serde_json::to_value(payload)
            .map_err(|e| ClientError::Codec(paychan_x402::codec::CodecError::Json(e)))?,
        extensions: None,
    };
    let encoded = codec::encode(&payment)?;
    HeaderValue::from_str(&encoded).map_err(|e| ClientError::MalformedOffer(e.to_string()))
}

fn attach(req: &mut Request, offer: &Offer, voucher: &SignedVoucher) -> Result<(), ClientError> {
    let value = payment_header(offer, voucher)?;
    req.headers_mut()
        .insert(HeaderName::from_static("payment-signature"), value);
    Ok(())
}

impl PaychanMiddleware {
    /// A middleware paying with `client`.
    #[must_use]
    pub fn new(client: PaychanClient) -> Self {
        Self { client }
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &PaychanClient {
        &self.client
    }

    /// Records how a paid request to `origin` ended; returns whether it
    /// was refused (a 402 to read, or a refused header).
    async fn record(
        lease: &mut Lease,
        voucher: &SignedVoucher,
        response: &Response,
        origin: &Url,
    ) -> Result<bool, ClientError> {
        let increment = voucher
            .voucher
            .cumulative_amount
            .saturating_sub(lease.state().accepted);
        let outcome = outcome(response, origin, increment);
        match &outcome {
            Outcome::Paid => {
                lease.paid(voucher);
                return Ok(false);
            }
            Outcome::Rejected => return Ok(true),
            Outcome::ServerError(_) => {}
            Outcome::OtherOrigin => tracing::error!(
                channel = %lease.channel(),
                cumulative = voucher.voucher.cumulative_amount,
                request = %origin,
                answered_by = %response.url(),
                "a paid request was answered from another origin (a redirect followed by a \
                 client that is not PaychanClient::http_client): the voucher is kept as a \
                 credit, not counted as paid"
            ),
            Outcome::Unconfirmed(receipt) => tracing::warn!(
                channel = %lease.channel(),
                cumulative = voucher.voucher.cumulative_amount,
                status = %response.status(),
                ?receipt,
                "a paid request was answered without a confirming PAYMENT-RESPONSE: the \
                 voucher is kept as a credit, not counted as paid"
            ),
        }
        lease.unconfirmed().await?;
        Ok(false)
    }
}

#[async_trait::async_trait]
impl Middleware for PaychanMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let headers = req.headers();
        if headers.contains_key(HEADER_PAYMENT_SIGNATURE) || headers.contains_key(HEADER_X_PAYMENT)
        {
            return next.run(req, extensions).await;
        }
        if !headers.contains_key(HEADER_IDEMPOTENCY_KEY) {
            let key = HeaderValue::from_str(&idempotency_key())
                .map_err(|e| mw(ClientError::Task(e.to_string())))?;
            req.headers_mut()
                .insert(HeaderName::from_static("idempotency-key"), key);
        }
        let origin = req.url().clone();
        let resource = resource_key(req.method(), req.url());
        let spare = req.try_clone();

        // Pre-pay with the offer seen last time for this method and URL.
        let mut paid: Option<(Lease, SignedVoucher)> = None;
        if let Some(offer) = resource
            .as_deref()
            .and_then(|key| self.client.cached_offer(key))
        {
            let mut lease = self.client.lease(&offer).await.map_err(mw)?;
            let voucher = lease.voucher(offer.price).await.map_err(mw)?;
            attach(&mut req, &offer, &voucher).map_err(mw)?;
            paid = Some((lease, voucher));
        }
        let first = next.clone().run(req, extensions).await?;
        if let Some((lease, voucher)) = paid.as_mut() {
            if !Self::record(lease, voucher, &first, &origin)
                .await
                .map_err(mw)?
            {
                return Ok(first);
            }
        } else if first.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(first);
        } else if !same_origin(first.url(), &origin) {
            // A retry would go to the request's origin, paying an offer
            // another origin made.
            tracing::error!(
                request = %origin,
                answered_by = %first.url(),
                "a 402 from another origin than the request's is not paid"
            );
            return Ok(first);
        }

        // A 402: pay once; a refused voucher with a resynchronisation hint
        // gets one more try.
        let mut response = first;
        let mut retries = 0u8;
        loop {
            let required = response
                .headers()
                .get(HEADER_PAYMENT_REQUIRED)
                .map(|h| decode_required(h.as_bytes()));
            let (Some(mut retry), Some(Ok(required))) =
                (spare.as_ref().and_then(Request::try_clone), required)
            else {
                if let Some((lease, _)) = paid.as_mut() {
                    lease.rejected();
                }
                return Ok(response);
            };
            let mut resynced = false;
            if let Some((lease, _)) = paid.as_mut() {
                match resync_hint(&required) {
                    Some(hint) if hint.channel == Some(lease.channel()) => {
                        match hint.last_accepted {
                            Some(last) => {
                                if lease.resync(last).is_err() {
                                    lease.rejected();
                                    return Ok(response);
                                }
                                resynced = true;
                            }
                            None => {
                                lease.rejected();
                                lease.refresh().await.map_err(mw)?;
                            }
                        }
                    }
                    _ => lease.rejected(),
                }
            }
            if retries >= 2 || (retries == 1 && !resynced) {
                return Ok(response);
            }
            let offer = match self.client.select_offer(&required) {
                Ok(offer) => offer,
                Err(ClientError::NoAcceptableOffer(_)) => return Ok(response),
                Err(e) => return Err(mw(e)),
            };
            if let Some(key) = &resource {
                self.client.cache_offer(key.clone(), offer.clone());
            }
            let mut lease = match paid.take() {
                Some((lease, _))
                    if lease.state().payee == offer.payee && lease.state().can_pay(offer.price) =>
                {
                    lease
                }
                other => {
                    drop(other);
                    self.client.lease(&offer).await.map_err(mw)?
                }
            };
            let voucher = lease.voucher(offer.price).await.map_err(mw)?;
            attach(&mut retry, &offer, &voucher).map_err(mw)?;
            response = next.clone().run(retry, extensions).await?;
            retries += 1;
            if !Self::record(&mut lease, &voucher, &response, &origin)
                .await
                .map_err(mw)?
            {
                return Ok(response);
            }
            paid = Some((lease, voucher));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use reqwest::ResponseBuilderExt;

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn settle(success: bool, amount: Option<&str>) -> HeaderValue {
        HeaderValue::from_str(
            &codec::encode(&v2::SettleResponse {
                success,
                error_reason: (!success).then(|| "nope".to_owned()),
                payer: None,
                transaction: String::new(),
                network: "solana:test".into(),
                amount: amount.map(str::to_owned),
                error_message: None,
                extensions: None,
            })
            .unwrap(),
        )
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, HeaderValue)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.clone());
        }
        h
    }

    #[test]
    fn offers_are_keyed_by_method_and_full_url() {
        let get = |u: &str| resource_key(&Method::GET, &url(u)).unwrap();
        assert_eq!(
            get("https://api.example:8443/units?n=1#frag"),
            "GET https://api.example:8443/units?n=1"
        );
        // The query, the method, the port and the scheme tell requests apart.
        assert_ne!(
            get("https://a.example/units?n=1"),
            get("https://a.example/units?n=100")
        );
        assert_ne!(get("https://a.example/p"), get("https://a.example/p?"));
        assert_ne!(
            get("https://a.example/p"),
            resource_key(&Method::POST, &url("https://a.example/p")).unwrap()
        );
        assert_ne!(get("https://a.example/p"), get("https://a.example:444/p"));
        assert_ne!(get("https://a.example/p"), get("http://a.example/p"));
        // Default ports and credentials do not.
        assert_eq!(get("https://a.example/p"), get("https://a.example:443/p"));
        assert_eq!(get("https://a.example/p"), get("https://u:pw@a.example/p"));
        // Too long to remember.
        let long = format!("https://a.example/{}", "x".repeat(MAX_RESOURCE_KEY_LEN));
        assert_eq!(resource_key(&Method::GET, &url(&long)), None);
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let same = |a: &str, b: &str| same_origin(&url(a), &url(b));
        assert!(same("https://a.example/x?q", "https://a.example:443/y"));
        assert!(!same("https://a.example/", "http://a.example/"));
        assert!(!same("https://a.example/", "https://b.example/"));
        assert!(!same("https://a.example/", "https://a.example:8443/"));
        assert!(!same("http://127.0.0.1:8080/", "http://localhost:8080/"));
    }

    #[test]
    fn only_a_confirming_receipt_counts() {
        let read = |h: &HeaderMap| PaymentReceipt::read(h, 100);
        assert_eq!(read(&HeaderMap::new()), PaymentReceipt::Missing);
        assert!(matches!(
            read(&headers(&[(
                "payment-response",
                HeaderValue::from_static("%%%")
            )])),
            PaymentReceipt::Malformed(_)
        ));
        assert_eq!(
            read(&headers(&[(
                "payment-response",
                settle(false, Some("100"))
            )])),
            PaymentReceipt::Failed(Some("nope".into()))
        );
        for bad in ["-1", "1e3", "", "100.0", "99999999999999999999999"] {
            assert_eq!(
                read(&headers(&[("payment-response", settle(true, Some(bad)))])),
                PaymentReceipt::BadAmount(bad.into()),
                "{bad}"
            );
        }
        assert_eq!(
            read(&headers(&[("payment-response", settle(true, Some("101")))])),
            PaymentReceipt::Overcharged {
                charged: 101,
                increment: 100
            }
        );
        assert_eq!(
            read(&headers(&[("payment-response", settle(true, Some("100")))])),
            PaymentReceipt::Confirmed { charged: 100 }
        );
        assert_eq!(
            read(&headers(&[("payment-response", settle(true, Some("40")))])),
            PaymentReceipt::Confirmed { charged: 40 }
        );
        // An amount left out is the increment.
        assert_eq!(
            read(&headers(&[("payment-response", settle(true, None))])),
            PaymentReceipt::Confirmed { charged: 100 }
        );
        // v1 alone counts; v2 wins over v1.
        assert_eq!(
            read(&headers(&[(
                "x-payment-response",
                settle(true, Some("100"))
            )])),
            PaymentReceipt::Confirmed { charged: 100 }
        );
        assert_eq!(
            read(&headers(&[
                ("payment-response", settle(false, None)),
                ("x-payment-response", settle(true, Some("100"))),
            ])),
            PaymentReceipt::Failed(Some("nope".into()))
        );
    }

    fn response(status: u16, from: &str, pairs: &[(&'static str, HeaderValue)]) -> Response {
        let mut builder = http::Response::builder().status(status).url(url(from));
        for (name, value) in pairs {
            builder = builder.header(*name, value.clone());
        }
        Response::from(builder.body("").unwrap())
    }

    #[test]
    fn outcomes_of_a_paid_request() {
        let origin = url("https://a.example/paid");
        let ok = settle(true, Some("100"));
        let outcome =
            |status, from, pairs: &[_]| outcome(&response(status, from, pairs), &origin, 100);
        let here = "https://a.example/paid";
        assert_eq!(
            outcome(200, here, &[("payment-response", ok.clone())]),
            Outcome::Paid
        );
        // Same origin, another path (a redirect followed within the origin).
        assert_eq!(
            outcome(
                200,
                "https://a.example/landing",
                &[("payment-response", ok.clone())]
            ),
            Outcome::Paid
        );
        assert_eq!(
            outcome(200, here, &[]),
            Outcome::Unconfirmed(PaymentReceipt::Missing)
        );
        assert_eq!(
            outcome(302, here, &[]),
            Outcome::Unconfirmed(PaymentReceipt::Missing)
        );
        assert_eq!(
            outcome(404, here, &[]),
            Outcome::Unconfirmed(PaymentReceipt::Missing)
        );
        assert_eq!(
            outcome(500, here, &[("payment-response", ok.clone())]),
            Outcome::ServerError(StatusCode::INTERNAL_SERVER_ERROR)
        );
        assert_eq!(outcome(402, here, &[]), Outcome::Rejected);
        assert_eq!(outcome(400, here, &[]), Outcome::Rejected);
        assert_eq!(
            outcome(400, here, &[("payment-response", ok.clone())]),
            Outcome::Paid
        );
        // Another origin's answer is never a receipt, nor a refusal to read.
        for status in [200, 402, 500] {
            assert_eq!(
                outcome(
                    status,
                    "https://b.example/paid",
                    &[("payment-response", ok.clone())]
                ),
                Outcome::OtherOrigin
            );
        }
    }
}
