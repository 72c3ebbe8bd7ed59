//! # paychan-x402
//!
//! The x402 wire formats paychan speaks: the v2 types (`PAYMENT-REQUIRED`,
//! `PAYMENT-SIGNATURE`, `PAYMENT-RESPONSE`), the v1 shapes (`X-PAYMENT` and
//! the 402 body), the header codec (standard base64 with padding over JSON),
//! networks (CAIP-2 and v1 names) and the `paychan` scheme's `extra` and
//! payload. Field names follow the x402 specifications.
//!
//! ```
//! use paychan_x402::{codec, v2};
//! let required = v2::PaymentRequired {
//!     x402_version: 2,
//!     error: None,
//!     resource: v2::Resource { url: "https://api.example/paid".into(), description: None, mime_type: None },
//!     accepts: vec![],
//!     extensions: None,
//! };
//! let header = codec::encode(&required).unwrap();
//! let back: v2::PaymentRequired = codec::decode(header.as_bytes()).unwrap();
//! assert_eq!(back, required);
//! ```
//!
//! ## Crate features
//! - `server` (off by default): [`server::Paywall`], a tower layer for axum
//!   routes that answers 402 with a `paychan` offer and checks vouchers with
//!   `paychan-verifier` before the handler runs, and [`server::facilitator`],
//!   the `/verify`, `/settle` and `/supported` routes (docs/004-x402-http.md).
#![warn(missing_docs)]

pub mod codec;
pub mod network;
pub mod payment;
pub mod scheme;
#[cfg(feature = "server")]
pub mod server;
pub mod v1;
pub mod v2;

/// `PAYMENT-REQUIRED` (v2, server → client with 402).
pub const HEADER_PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// `PAYMENT-SIGNATURE` (v2, client → server).
pub const HEADER_PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// `PAYMENT-RESPONSE` (v2, server → client on success).
pub const HEADER_PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// `X-PAYMENT` (v1, client → server).
pub const HEADER_X_PAYMENT: &str = "X-PAYMENT";
/// `X-PAYMENT-RESPONSE` (v1, server → client).
pub const HEADER_X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
