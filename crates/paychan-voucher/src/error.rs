//! Error types. Neither carries heap data, so both are usable on chain.

/// Why a voucher could not be encoded, decoded, signed, verified or converted.
///
/// The enum always has every variant; the ones marked "std only" / "serde only"
/// are only produced by the code behind the `std` / `serde` features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum VoucherError {
    /// The byte string does not have the length its format requires.
    #[error("wrong voucher length: expected {expected} bytes, got {actual}")]
    WrongLength {
        /// Length the format requires (for a v2 voucher shorter than its header:
        /// the header length).
        expected: usize,
        /// Length that was given.
        actual: usize,
    },
    /// The first two bytes are not the magic of the expected version.
    #[error("bad voucher magic")]
    BadMagic,
    /// A v2 channel count outside `1..=V2_MAX_CHANNELS` (count byte when decoding,
    /// empty input when encoding or hashing).
    #[error("bad channel count (must be 1..=64)")]
    BadCount,
    /// Channel ids given to [`crate::channels_hash`] are not strictly increasing
    /// by raw bytes (this includes duplicates).
    #[error("channel ids are not strictly increasing")]
    ChannelsNotIncreasing,
    /// More than `V2_MAX_CHANNELS` channels given to an encoder or to
    /// [`crate::channels_hash`].
    #[error("too many channels (at most 64)")]
    TooManyChannels,
    /// std only: the Ed25519 signature does not verify under `verify_strict`.
    #[error("signature does not verify")]
    BadSignature,
    /// std only: the signer's public key is not a valid curve point encoding.
    #[error("signer public key is not a valid point")]
    InvalidSigner,
    /// std only: the verifying key passed by the caller is not the voucher's signer.
    #[error("verifying key does not match the voucher signer")]
    SignerMismatch,
    /// serde only: a field is not valid base58.
    #[error("invalid base58")]
    BadBase58,
    /// serde only: a base58 field decodes to the wrong number of bytes
    /// (32 for keys and channel ids, 64 for signatures).
    #[error("base58 field decodes to the wrong number of bytes")]
    BadKeyLength,
    /// serde only: `expiresAt` is not an RFC 3339 timestamp with offset, is the
    /// Unix epoch itself (which would silently mean "no expiry"), or an
    /// `expires_at` cannot be written as RFC 3339 (year outside 0000..=9999).
    #[error("invalid or unrepresentable RFC 3339 timestamp")]
    BadTimestamp,
    /// serde only: `cumulativeAmount` is not a canonical decimal u64.
    #[error("invalid amount (expected a decimal u64 string)")]
    BadAmount,
    /// serde only: `signatureType` is not `"ed25519"`.
    #[error("unsupported signature type (expected \"ed25519\")")]
    UnsupportedSignatureType,
}

/// Why Ed25519 precompile instruction data was not built or was rejected by the
/// strict parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Ed25519LayoutError {
    /// Zero signatures (`num_signatures == 0`, or no entries given to the builder).
    /// The runtime accepts `[0, 0]` as valid, so this must be refused.
    #[error("ed25519 instruction carries no signature")]
    NoSignatures,
    /// More than `MAX_PRECOMPILE_SIGNATURES` signatures (leaders drop such transactions).
    #[error("ed25519 instruction carries {count} signatures (at most 8)")]
    TooManySignatures {
        /// The count found or requested.
        count: usize,
    },
    /// `num_signatures` is valid but not the number the caller expects.
    #[error("ed25519 instruction carries {actual} signatures, expected {expected}")]
    CountMismatch {
        /// Number the caller expects.
        expected: usize,
        /// Number found in the header.
        actual: usize,
    },
    /// The header padding byte is not zero.
    #[error("ed25519 instruction header padding byte is not zero")]
    NonZeroPadding,
    /// The data length is not exactly `2 + 14n + n * (96 + message_len)`
    /// (truncated, or rider bytes appended).
    #[error("ed25519 instruction data is {actual} bytes, expected exactly {expected}")]
    WrongLength {
        /// Exact length of the canonical layout.
        expected: usize,
        /// Length that was given.
        actual: usize,
    },
    /// A `*_instruction_index` of a record is not `u16::MAX` (the bytes would
    /// come from, and be verified in, another instruction).
    #[error("ed25519 record {record} points into another instruction")]
    ForeignInstructionIndex {
        /// Zero-based record number.
        record: usize,
    },
    /// A record's `message_data_size` is not the expected message length.
    #[error("ed25519 record {record} has message size {actual}, expected {expected}")]
    MessageSizeMismatch {
        /// Zero-based record number.
        record: usize,
        /// Expected message length.
        expected: usize,
        /// `message_data_size` found in the record.
        actual: usize,
    },
    /// A record's signature, public-key or message offset is not the canonical one.
    #[error("ed25519 record {record} has a non-canonical offset")]
    NonCanonicalOffset {
        /// Zero-based record number.
        record: usize,
    },
    /// A record's offsets point outside the instruction data.
    #[error("ed25519 record {record} points outside the instruction data")]
    OffsetOutOfRange {
        /// Zero-based record number.
        record: usize,
    },
    /// The caller's `expected_count` is outside `1..=MAX_PRECOMPILE_SIGNATURES`.
    #[error("expected signature count {expected_count} is outside 1..=8")]
    InvalidExpectedCount {
        /// The value passed.
        expected_count: usize,
    },
    /// The caller's `message_len` is so large that the canonical layout's offsets
    /// or message size would not fit in a `u16`.
    #[error("message length {message_len} does not fit the precompile layout")]
    InvalidMessageLen {
        /// The value passed.
        message_len: usize,
    },
    /// Builder only: an offset or message size of the requested layout does not
    /// fit in a `u16`.
    #[error("ed25519 instruction layout offsets do not fit in u16")]
    OffsetOverflow,
}
