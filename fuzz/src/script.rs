//! The input of the live-path targets (`paywall`, `facilitator`): a short
//! script of requests, sent in order to one fresh server, so a crash always
//! reproduces from its input alone. Text the fuzzer mutates well (the JSON
//! inside a payment header is mutated as JSON; the harness encodes it):
//!
//! ```text
//! GET /paid?price=2000        first line: method and path (paywall) or
//! S {"x402Version":2,...}     route (facilitator: verify, settle, supported)
//! K retry-1                   then one tagged line per part, tag and one
//! B a body line               separator byte before the value
//! --                          a line `--` starts the next request
//! POST /paid
//! ```
//!
//! Tags: `S` `PAYMENT-SIGNATURE` = base64(value), `s` = value as is;
//! `X` / `x` the same for `X-PAYMENT`; `K` `Idempotency-Key`; `A`
//! `Authorization`; `B` a body line (lines joined with `\n`); `P n` pads the
//! body with `n` KiB of spaces (at most [`MAX_PAD_KIB`]). Other lines are
//! ignored; a header value that is not a valid header is left out.

/// Requests per input, at most.
pub const MAX_REQUESTS: usize = 8;
/// Body padding per request, at most (KiB).
pub const MAX_PAD_KIB: usize = 24;

/// One request of a script.
#[derive(Debug, Default)]
pub struct Request<'a> {
    /// The first line.
    pub head: &'a [u8],
    /// Header lines: tag and value, in order.
    pub headers: Vec<(u8, &'a [u8])>,
    /// The body.
    pub body: Vec<u8>,
}

/// The requests of `data`.
#[must_use]
pub fn parse(data: &[u8]) -> Vec<Request<'_>> {
    let mut out: Vec<Request<'_>> = Vec::new();
    let mut current: Option<Request<'_>> = None;
    let mut body_lines = 0usize;
    for line in data.split(|b| *b == b'\n') {
        if line == b"--" {
            out.extend(current.take());
            if out.len() >= MAX_REQUESTS {
                return out;
            }
            continue;
        }
        if current.is_none() {
            current = Some(Request {
                head: line,
                ..Request::default()
            });
            body_lines = 0;
            continue;
        }
        let Some(req) = current.as_mut() else {
            continue;
        };
        let Some((&tag, rest)) = line.split_first() else {
            continue;
        };
        let value = rest.get(1..).unwrap_or_default();
        match tag {
            b'B' => {
                if body_lines > 0 {
                    req.body.push(b'\n');
                }
                body_lines += 1;
                req.body.extend_from_slice(value);
            }
            b'P' => {
                let kib = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0)
                    .min(MAX_PAD_KIB);
                req.body.resize(req.body.len() + kib * 1024, b' ');
            }
            _ => req.headers.push((tag, value)),
        }
    }
    out.extend(current);
    out.truncate(MAX_REQUESTS);
    out
}

/// Writes one request of a script (for seeds).
#[must_use]
pub fn request(head: &str, headers: &[(u8, &str)], body: &[&str]) -> String {
    let mut out = String::from(head);
    for (tag, value) in headers {
        out.push('\n');
        out.push(char::from(*tag));
        out.push(' ');
        out.push_str(value);
    }
    for line in body {
        out.push_str("\nB ");
        out.push_str(line);
    }
    out
}

/// Joins requests into a script.
#[must_use]
pub fn script(requests: &[String]) -> Vec<u8> {
    requests.join("\n--\n").into_bytes()
}
