//! Secrets out of logs and errors: RPC URLs often carry an API key (in the
//! path or the query) and Redis URLs a password. What is shown of a URL is
//! its scheme, host and port.
//!
//! ```
//! use paychan_verifier::redact;
//! assert_eq!(redact::url("https://rpc.example/v2/SECRET?api-key=K"), "https://rpc.example/…");
//! assert_eq!(redact::url("redis://:hunter2@10.0.0.5:6379/0"), "redis://10.0.0.5:6379/…");
//! assert_eq!(
//!     redact::text("error sending request for url (https://rpc.example/?api-key=K): timed out"),
//!     "error sending request for url (https://rpc.example/…): timed out"
//! );
//! ```

/// Schemes whose URLs [`text`] finds in free text.
const SCHEMES: [&str; 6] = [
    "https://",
    "http://",
    "wss://",
    "ws://",
    "rediss://",
    "redis://",
];

/// `url` with its credentials, path and query removed (`scheme://host:port/…`);
/// a string that does not parse as a URL is replaced entirely.
#[must_use]
pub fn url(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "<url>".to_owned();
    };
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = if parsed.path().trim_start_matches('/').is_empty() && parsed.query().is_none() {
        ""
    } else {
        "/…"
    };
    format!("{}://{host}{port}{rest}", parsed.scheme())
}

/// `text` with every URL in it passed through [`url`].
#[must_use]
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, _)) = SCHEMES
        .iter()
        .filter_map(|s| rest.find(s).map(|i| (i, s)))
        .min_by_key(|(i, _)| *i)
    {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ',' | ']'))
            .unwrap_or(tail.len());
        out.push_str(&url(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_survive() {
        for (input, shown) in [
            (
                "https://mainnet.helius-rpc.com/?api-key=abc",
                "https://mainnet.helius-rpc.com/…",
            ),
            (
                "https://x.solana-mainnet.quiknode.pro/TOKEN/",
                "https://x.solana-mainnet.quiknode.pro/…",
            ),
            (
                "https://user:pw@rpc.example:8899",
                "https://rpc.example:8899",
            ),
            ("http://127.0.0.1:8899", "http://127.0.0.1:8899"),
            (
                "redis://:pw@redis.internal:6379/2",
                "redis://redis.internal:6379/…",
            ),
            ("not a url", "<url>"),
        ] {
            assert_eq!(url(input), shown, "{input}");
        }
        let t = text("a https://h/?k=SECRET b (redis://:SECRET@r:1/0) c http://x");
        assert!(!t.contains("SECRET"), "{t}");
        assert_eq!(t, "a https://h/… b (redis://r:1/…) c http://x");
    }
}
