//! Seed inputs and libFuzzer dictionaries for every target, made with the
//! project's own encoders and the fixture channel's key (so the live-path
//! seeds carry signatures the verifier accepts). The `seeds` program
//! writes them to `corpus/<target>/` and `dict/<target>.dict`.
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::{Accepted, Pubkey, SignedVoucher};
use paychan_voucher::{
    Ed25519Entry, MAGIC_V1, MAGIC_V2, VoucherV1, channels_hash, ed25519_instruction_data,
    ed25519_instruction_data_v1, json::SignedVoucherJson, sign_v1, sign_v2,
};
use paychan_x402::{server, v1, v2};

use crate::{
    fixture::{self, DEPOSIT, FAR_FUTURE, NETWORK, PAST, PRICE, V1_NETWORK},
    script::{request, script},
};

/// Any failure while making a seed.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A target's seeds: file name and contents.
pub type Seeds = Vec<(String, Vec<u8>)>;

/// Every fuzz target, in the order the smoke run takes them.
pub const TARGETS: [&str; 9] = [
    "voucher_v1",
    "voucher_v2",
    "ed25519_layout",
    "voucher_json",
    "payment_header",
    "channel_account",
    "stored_voucher",
    "paywall",
    "facilitator",
];

/// The seeds of `target`.
pub fn seeds(target: &str) -> Result<Seeds, Error> {
    match target {
        "voucher_v1" => Ok(voucher_v1()),
        "voucher_v2" => voucher_v2(),
        "ed25519_layout" => ed25519_layout(),
        "voucher_json" => voucher_json(),
        "payment_header" => payment_header(),
        "channel_account" => Ok(channel_account()),
        "stored_voucher" => Ok(stored_voucher()),
        "paywall" => paywall(),
        "facilitator" => facilitator(),
        other => Err(format!("no target {other}").into()),
    }
}

fn named(name: &str, bytes: impl Into<Vec<u8>>) -> (String, Vec<u8>) {
    (name.to_owned(), bytes.into())
}

fn forged(mut v: SignedVoucher) -> SignedVoucher {
    v.signature[3] ^= 1;
    v
}

fn voucher_v1() -> Seeds {
    let zero = sign_v1(
        &fixture::key(),
        &VoucherV1 {
            channel_id: [0; 32],
            cumulative_amount: 0,
            expires_at: 0,
        },
    );
    vec![
        named("open-1000", fixture::voucher(PRICE, 0).voucher.encode()),
        named(
            "deposit-far-future",
            fixture::voucher(DEPOSIT, FAR_FUTURE).voucher.encode(),
        ),
        named(
            "max-negative-expiry",
            fixture::voucher(u64::MAX, -1).voucher.encode(),
        ),
        named("zero", zero.voucher.encode()),
    ]
}

/// Channel ids in increasing order: the fixture channel and `n - 1` more.
fn channel_ids(n: u8) -> Vec<[u8; 32]> {
    let mut ids: Vec<[u8; 32]> = (0..n).map(|i| [0xC4_u8.wrapping_add(i); 32]).collect();
    ids.sort_unstable();
    ids
}

fn v2_message(n: u8, expires_at: i64) -> Result<Vec<u8>, Error> {
    let ids = channel_ids(n);
    let refs: Vec<&[u8; 32]> = ids.iter().collect();
    let hash = channels_hash(&paychan_sdk::ID.to_bytes(), &refs)?;
    let cumulatives: Vec<u64> = (1..=u64::from(n)).map(|i| i * PRICE).collect();
    let (message, _signature) = sign_v2(&fixture::key(), expires_at, &hash, &cumulatives)?;
    Ok(message)
}

fn voucher_v2() -> Result<Seeds, Error> {
    Ok(vec![
        named("one-channel", v2_message(1, 0)?),
        named("two-channels-expiring", v2_message(2, FAR_FUTURE)?),
        named("eight-channels", v2_message(8, PAST)?),
        named("sixty-four-channels", v2_message(64, 0)?),
    ])
}

/// The target's input: expected count, message length, then the data.
fn layout_input(count: u8, message_len: usize, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = vec![count, u8::try_from(message_len)?];
    out.extend_from_slice(data);
    Ok(out)
}

fn ed25519_layout() -> Result<Seeds, Error> {
    let vouchers: Vec<SignedVoucher> = (1..=8).map(|i| fixture::voucher(i * PRICE, 0)).collect();
    let mut out = Vec::new();
    for n in [1_usize, 2, 8] {
        let data = ed25519_instruction_data_v1(vouchers.get(..n).ok_or("eight vouchers")?)?;
        out.push(named(
            &format!("v1-{n}-vouchers"),
            layout_input(u8::try_from(n)?, 50, &data)?,
        ));
    }
    // A v2 batch voucher is the message of its one record.
    let message = v2_message(2, FAR_FUTURE)?;
    let key = fixture::key();
    let signer = key.verifying_key().to_bytes();
    let signature = ed25519_dalek::Signer::sign(&key, &message).to_bytes();
    let data = ed25519_instruction_data(&[Ed25519Entry {
        pubkey: &signer,
        signature: &signature,
        message: &message,
    }])?;
    out.push(named("v2-batch", layout_input(1, message.len(), &data)?));
    Ok(out)
}

fn voucher_json_of(v: &SignedVoucher) -> Result<SignedVoucherJson, Error> {
    Ok(SignedVoucherJson::try_from(v)?)
}

fn voucher_json() -> Result<Seeds, Error> {
    Ok(vec![
        named(
            "open-1000",
            serde_json::to_vec(&voucher_json_of(&fixture::voucher(PRICE, 0))?)?,
        ),
        named(
            "expiring-pretty",
            serde_json::to_vec_pretty(&voucher_json_of(&fixture::voucher(DEPOSIT, FAR_FUTURE))?)?,
        ),
        named(
            "max-amount",
            serde_json::to_vec(&voucher_json_of(&fixture::voucher(u64::MAX, PAST))?)?,
        ),
    ])
}

/// What the paywall offers at `price`.
fn requirements(price: u64) -> v2::PaymentRequirements {
    server::requirements(&fixture::terms(), NETWORK, &fixture::extra(), price)
}

fn v2_payload(v: &SignedVoucher, price: u64) -> Result<v2::PaymentPayload, Error> {
    Ok(v2::PaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: requirements(price),
        payload: serde_json::to_value(v)?,
        extensions: None,
    })
}

fn v1_payload(v: &SignedVoucher) -> Result<v1::PaymentPayload, Error> {
    Ok(v1::PaymentPayload {
        x402_version: 1,
        scheme: "paychan".into(),
        network: V1_NETWORK.into(),
        payload: serde_json::to_value(v)?,
    })
}

/// The JSON of a `PAYMENT-SIGNATURE` paying `price` with `v`.
fn v2_json(v: &SignedVoucher, price: u64) -> Result<String, Error> {
    Ok(serde_json::to_string(&v2_payload(v, price)?)?)
}

/// The JSON of an `X-PAYMENT` paying with `v`.
fn v1_json(v: &SignedVoucher) -> Result<String, Error> {
    Ok(serde_json::to_string(&v1_payload(v)?)?)
}

fn payment_header() -> Result<Seeds, Error> {
    let v = fixture::voucher(PRICE, 0);
    let expiring = fixture::voucher(DEPOSIT, FAR_FUTURE);
    Ok(vec![
        named(
            "v2-header",
            paychan_x402::codec::encode(&v2_payload(&v, PRICE)?)?,
        ),
        named(
            "v2-header-expiring",
            paychan_x402::codec::encode(&v2_payload(&expiring, PRICE)?)?,
        ),
        named("v1-header", paychan_x402::codec::encode(&v1_payload(&v)?)?),
        named("v2-json", v2_json(&v, PRICE)?),
        named("v1-json", v1_json(&expiring)?),
    ])
}

fn channel_account() -> Seeds {
    let data = |status: ChannelStatus, deposit, settled| {
        fixture::account_data(&fixture::channel_state(status as u8, deposit, settled))
    };
    vec![
        named("open", data(ChannelStatus::Open, DEPOSIT, 0)),
        named("closing", data(ChannelStatus::Closing, DEPOSIT, 5 * PRICE)),
        named("closed", data(ChannelStatus::Closed, DEPOSIT, DEPOSIT)),
    ]
}

fn stored_voucher() -> Seeds {
    let record = |v: SignedVoucher, previous| {
        Accepted {
            voucher: v,
            previous,
        }
        .encode()
    };
    vec![
        named("first", record(fixture::voucher(PRICE, 0), 0)),
        named(
            "later-expiring",
            record(fixture::voucher(5 * PRICE, FAR_FUTURE), 4 * PRICE),
        ),
        named("max", record(fixture::voucher(u64::MAX, -1), u64::MAX - 1)),
    ]
}

fn paywall() -> Result<Seeds, Error> {
    let pay = |cumulative: u64, price: u64| v2_json(&fixture::voucher(cumulative, 0), price);
    let get = |path: &str, header: &str| request(&format!("GET {path}"), &[(b'S', header)], &[]);
    let p1000 = pay(PRICE, PRICE)?;
    let p2000 = pay(2 * PRICE, PRICE)?;
    let keyed = |body: &str| {
        request(
            "POST /paid?q=1",
            &[(b'S', p2000.as_str()), (b'K', "retry-1")],
            &[body],
        )
    };
    let mut malformed = serde_json::to_value(v2_payload(&fixture::voucher(PRICE, 0), PRICE)?)?;
    malformed["payload"]["voucher"]["cumulativeAmount"] = "12x".into();
    let mut wrong_network = v2_payload(&fixture::voucher(PRICE, 0), PRICE)?;
    wrong_network.accepted.network = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into();
    let mut wrong_scheme = v2_payload(&fixture::voucher(PRICE, 0), PRICE)?;
    wrong_scheme.accepted.scheme = "exact".into();
    let unknown = v2_json(
        &fixture::voucher_for(Pubkey::new_from_array([0xEE; 32]), PRICE, 0),
        PRICE,
    )?;
    let long_key = "k".repeat(129);
    Ok(vec![
        named("paid-once", script(&[get("/paid", &p1000)])),
        named(
            "retry-with-key",
            script(&[
                get("/paid", &p1000),
                keyed("body"),
                keyed("body"),
                keyed("other body"),
                get("/paid", &p2000),
            ]),
        ),
        named(
            "v1-x-payment",
            script(&[request(
                "GET /paid",
                &[(b'X', &v1_json(&fixture::voucher(PRICE, 0))?)],
                &[],
            )]),
        ),
        named(
            "priced-then-stale",
            script(&[
                get("/paid?price=5000", &pay(5 * PRICE, 5 * PRICE)?),
                get("/paid", &pay(4 * PRICE, PRICE)?),
            ]),
        ),
        named(
            "deposit",
            script(&[
                get("/paid", &pay(DEPOSIT + PRICE, PRICE)?),
                get("/paid", &pay(DEPOSIT, PRICE)?),
            ]),
        ),
        named(
            "free-and-offer",
            script(&[
                request("GET /free", &[], &[]),
                request("GET /paid", &[], &[]),
            ]),
        ),
        named(
            "malformed",
            script(&[
                request("GET /paid", &[(b's', "not base64!")], &[]),
                get("/paid", r#"{"x402Version":2}"#),
                get("/paid", &serde_json::to_string(&malformed)?),
            ]),
        ),
        named(
            "expiry",
            script(&[
                get("/paid", &v2_json(&fixture::voucher(PRICE, PAST), PRICE)?),
                get(
                    "/paid",
                    &v2_json(&fixture::voucher(PRICE, FAR_FUTURE), PRICE)?,
                ),
            ]),
        ),
        named(
            "forged-then-honest",
            script(&[
                get(
                    "/paid",
                    &v2_json(&forged(fixture::voucher(PRICE, 0)), PRICE)?,
                ),
                get("/paid", &p2000),
            ]),
        ),
        named(
            "idempotency-limits",
            script(&[
                request("POST /paid", &[(b'S', &p1000), (b'K', &long_key)], &[]),
                request(
                    "POST /paid",
                    &[(b'S', &p1000), (b'K', "k"), (b'P', "9")],
                    &[],
                ),
            ]),
        ),
        named(
            "not-ours",
            script(&[
                get("/paid", &serde_json::to_string(&wrong_network)?),
                get("/paid", &serde_json::to_string(&wrong_scheme)?),
                get("/paid", &unknown),
            ]),
        ),
    ])
}

/// A v2 facilitator request paying `price` with `v`.
fn v2_request(v: &SignedVoucher, price: u64) -> Result<v2::FacilitatorRequest, Error> {
    Ok(v2::FacilitatorRequest {
        x402_version: 2,
        payment_payload: v2_payload(v, price)?,
        payment_requirements: requirements(price),
    })
}

fn v1_request(v: &SignedVoucher, price: u64) -> Result<String, Error> {
    let required = server::payment_required(
        &fixture::terms(),
        NETWORK,
        &fixture::extra(),
        price,
        v2::Resource {
            url: "https://api.example/paid".into(),
            description: None,
            mime_type: None,
        },
    );
    let requirements = server::to_v1(&required)
        .accepts
        .into_iter()
        .next()
        .ok_or("one v1 requirement")?;
    Ok(serde_json::to_string(&serde_json::json!({
        "x402Version": 1,
        "paymentPayload": v1_payload(v)?,
        "paymentRequirements": requirements,
    }))?)
}

fn facilitator() -> Result<Seeds, Error> {
    let bearer = format!("Bearer {}", fixture::TOKEN);
    let call = |route: &str, body: &str| request(route, &[(b'A', bearer.as_str())], &[body]);
    let body = |cumulative: u64| -> Result<String, Error> {
        Ok(serde_json::to_string(&v2_request(
            &fixture::voucher(cumulative, 0),
            PRICE,
        )?)?)
    };
    let b1000 = body(PRICE)?;
    let mut wrong_payee = v2_request(&fixture::voucher(PRICE, 0), PRICE)?;
    wrong_payee.payment_requirements.pay_to = fixture::PAYER.to_string();
    let mut below_floor = v2_request(&fixture::voucher(PRICE, 0), 1)?;
    below_floor.payment_requirements.amount = "1".into();
    Ok(vec![
        named(
            "verify-settle-twice",
            script(&[
                call("verify", &b1000),
                call("settle", &b1000),
                call("settle", &b1000),
                call("verify", &body(2 * PRICE)?),
            ]),
        ),
        named(
            "v1-settle",
            script(&[call(
                "settle",
                &v1_request(&fixture::voucher(PRICE, FAR_FUTURE), PRICE)?,
            )]),
        ),
        named(
            "unauthorized",
            script(&[
                request("verify", &[], &[&b1000]),
                request("settle", &[(b'A', "Bearer wrong")], &[&b1000]),
            ]),
        ),
        named(
            "bad-requests",
            script(&[
                call("verify", r#"{"x402Version":3}"#),
                call("settle", "not json"),
                request("supported", &[], &[]),
            ]),
        ),
        named(
            "too-large",
            script(&[request(
                "settle",
                &[(b'A', bearer.as_str()), (b'P', "17")],
                &[&b1000],
            )]),
        ),
        named(
            "not-ours",
            script(&[
                call("verify", &serde_json::to_string(&wrong_payee)?),
                call("settle", &serde_json::to_string(&below_floor)?),
            ]),
        ),
        named(
            "deposit",
            script(&[
                call("settle", &body(DEPOSIT + PRICE)?),
                call("settle", &body(DEPOSIT)?),
                call("verify", &body(DEPOSIT)?),
            ]),
        ),
        named(
            "forged",
            script(&[call(
                "settle",
                &serde_json::to_string(&v2_request(&forged(fixture::voucher(PRICE, 0)), PRICE)?)?,
            )]),
        ),
    ])
}

/// JSON names and values of vouchers and payments.
fn json_words() -> Vec<Vec<u8>> {
    let key = fixture::key().verifying_key().to_bytes();
    let mut words: Vec<String> = [
        "\"x402Version\"",
        "\"accepted\"",
        "\"payload\"",
        "\"voucher\"",
        "\"channelId\"",
        "\"cumulativeAmount\"",
        "\"expiresAt\"",
        "\"signer\"",
        "\"signature\"",
        "\"signatureType\"",
        "\"ed25519\"",
        "\"scheme\"",
        "\"network\"",
        "\"paychan\"",
        "\"amount\"",
        "\"asset\"",
        "\"payTo\"",
        "\"maxTimeoutSeconds\"",
        "\"extra\"",
        "\"resource\"",
        "\"extensions\"",
        "\"18446744073709551615\"",
        "\"18446744073709551616\"",
        "\"1000000\"",
        "\"1000\"",
        "\"0\"",
        "\"01\"",
        "\"2100-01-01T00:00:00Z\"",
        "\"1970-01-01T00:00:00Z\"",
        "\"9999-12-31T23:59:59+23:59\"",
        "\"solana-devnet\"",
        "\"solana\"",
        "null",
        "true",
        ":2,",
        ":1,",
        "{}",
        "[]",
        "\\u0000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for base58 in [
        fixture::CHANNEL.to_string(),
        Pubkey::new_from_array(key).to_string(),
        fixture::PAYEE.to_string(),
        fixture::MINT.to_string(),
        NETWORK.to_owned(),
    ] {
        words.push(format!("\"{base58}\""));
    }
    words.into_iter().map(String::into_bytes).collect()
}

/// The dictionary of `target`: one entry per line.
#[must_use]
pub fn dictionary(target: &str) -> Vec<Vec<u8>> {
    let magic: Vec<Vec<u8>> = vec![MAGIC_V1.to_vec(), MAGIC_V2.to_vec()];
    let channel = fixture::CHANNEL.to_bytes().to_vec();
    let mut words = match target {
        "voucher_v1" | "stored_voucher" => {
            let mut w = magic;
            w.push(channel);
            w.extend([vec![0xff; 8], vec![0; 8], 1000_u64.to_le_bytes().to_vec()]);
            w
        }
        "voucher_v2" => {
            let mut w = magic;
            w.extend([vec![1], vec![64], vec![65], vec![0xff; 8], vec![0; 8]]);
            w
        }
        "ed25519_layout" => {
            let mut w = magic;
            w.extend([
                vec![0xff, 0xff],
                vec![1, 0],
                vec![8, 0],
                vec![0x72, 0],
                vec![0x10, 0],
                vec![50, 0],
            ]);
            w.push(fixture::key().verifying_key().to_bytes().to_vec());
            w
        }
        "channel_account" => {
            vec![
                paychan_sdk::state::Channel::DISCRIMINATOR.to_vec(),
                vec![1],
                vec![2],
                vec![3],
                fixture::key().verifying_key().to_bytes().to_vec(),
                vec![0xff; 8],
            ]
        }
        _ => json_words(),
    };
    match target {
        "payment_header" => {
            // Standard base64 of the documents' openings.
            for opening in [r#"{"x402Version":2,"#, r#"{"x402Version":1,"#] {
                words.push(
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, opening)
                        .into_bytes(),
                );
            }
        }
        "paywall" => {
            for w in [
                "\n--\n",
                "\nS ",
                "\ns ",
                "\nX ",
                "\nx ",
                "\nK ",
                "\nB ",
                "\nP ",
                "GET /paid",
                "POST /paid",
                "/free",
                "?price=",
                "&price=",
                "18446744073709551615",
            ] {
                words.push(w.as_bytes().to_vec());
            }
        }
        "facilitator" => {
            let bearer = format!("\nA Bearer {}", fixture::TOKEN);
            for w in [
                "\n--\n",
                "\nB ",
                "\nP ",
                "\nA ",
                bearer.as_str(),
                "verify",
                "settle",
                "supported",
                "\"paymentPayload\"",
                "\"paymentRequirements\"",
                "\"maxAmountRequired\"",
                "\"description\"",
                "\"mimeType\"",
                "\"url\"",
            ] {
                words.push(w.as_bytes().to_vec());
            }
        }
        _ => {}
    }
    words
}

/// A libFuzzer dictionary: `"…"` per entry, `\xNN` for bytes that are not
/// printable ASCII, `\"` and `\\` for `"` and `\`.
#[must_use]
pub fn dictionary_text(target: &str) -> String {
    let mut out = format!("# {target}: written by `seeds` (fuzz/seeds/main.rs); do not edit.\n");
    for word in dictionary(target) {
        out.push('"');
        for b in word {
            if b == b'"' || b == b'\\' {
                out.push('\\');
                out.push(char::from(b));
            } else if b.is_ascii_graphic() || b == b' ' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
        out.push_str("\"\n");
    }
    out
}
