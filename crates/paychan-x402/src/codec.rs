//! Header codec: standard base64 (with padding) over UTF-8 JSON, bounded.
use base64::Engine;
use serde::{Serialize, de::DeserializeOwned};

/// Longest header value decoded; longer ones are refused before decoding.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// Why a header value could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Longer than [`MAX_HEADER_LEN`].
    #[error("header of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not standard base64 with padding.
    #[error("header is not standard base64")]
    Base64,
    /// Not the expected JSON.
    #[error("header JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes a value as a header: base64(JSON).
pub fn encode<T: Serialize>(value: &T) -> Result<String, CodecError> {
    let json = serde_json::to_vec(value)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(json))
}

/// Decodes a header value.
pub fn decode<T: DeserializeOwned>(value: &[u8]) -> Result<T, CodecError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(CodecError::TooLarge(value.len()));
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| CodecError::Base64)?;
    Ok(serde_json::from_slice(&json)?)
}

/// The `x402Version` of a payment header, read without knowing its shape.
pub fn version(value: &[u8]) -> Result<u32, CodecError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Versioned {
        x402_version: u32,
    }
    Ok(decode::<Versioned>(value)?.x402_version)
}
