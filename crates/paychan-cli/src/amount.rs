//! Token amounts on the command line: base units (`1500000`) or decimal UI
//! amounts in the mint's decimals (`1.5`), parsed exactly (no floats).
use std::{fmt, str::FromStr};

/// Most decimals an SPL mint can have that still fit `10^d` in a `u64`.
pub const MAX_DECIMALS: u8 = 19;

/// Why an amount was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing given.
    #[error("empty amount")]
    Empty,
    /// A leading `-`.
    #[error("amounts cannot be negative")]
    Negative,
    /// Anything but ASCII digits and one `.` with digits on both sides.
    #[error("expected base units (`1500000`) or a decimal amount (`1.5`)")]
    Syntax,
    /// More fractional digits than the mint has decimals.
    #[error("{given} decimal places, but the mint has {decimals}")]
    TooManyDecimals {
        /// Fractional digits given.
        given: usize,
        /// The mint's decimals.
        decimals: u8,
    },
    /// The value does not fit a `u64` of base units.
    #[error("amount exceeds the largest token amount (u64::MAX base units)")]
    Overflow,
    /// The mint claims more decimals than a `u64` can scale by.
    #[error("unsupported mint decimals {0}")]
    Decimals(u8),
}

/// An amount as typed, before the mint's decimals are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmountInput {
    /// Whole base units (`1500000`).
    Base(u64),
    /// A decimal UI amount (`1.5`): its integer and fractional digits.
    Ui {
        /// Digits before the point (no leading `+`/`-`).
        whole: String,
        /// Digits after the point (at least one).
        fraction: String,
    },
}

impl FromStr for AmountInput {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        if s.starts_with('-') {
            return Err(AmountError::Negative);
        }
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        match s.split_once('.') {
            None if digits(s) => s
                .parse::<u64>()
                .map(Self::Base)
                .map_err(|_| AmountError::Overflow),
            Some((whole, fraction)) if digits(whole) && digits(fraction) => Ok(Self::Ui {
                whole: whole.to_string(),
                fraction: fraction.to_string(),
            }),
            _ => Err(AmountError::Syntax),
        }
    }
}

impl fmt::Display for AmountInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Base(n) => write!(f, "{n}"),
            Self::Ui { whole, fraction } => write!(f, "{whole}.{fraction}"),
        }
    }
}

impl AmountInput {
    /// Base units for a mint with `decimals` decimals.
    pub fn to_base_units(&self, decimals: u8) -> Result<u64, AmountError> {
        match self {
            Self::Base(n) => Ok(*n),
            Self::Ui { whole, fraction } => {
                let scale = scale(decimals)?;
                // Trailing zeros beyond the mint's decimals are harmless.
                let fraction = fraction.trim_end_matches('0');
                if fraction.len() > usize::from(decimals) {
                    return Err(AmountError::TooManyDecimals {
                        given: fraction.len(),
                        decimals,
                    });
                }
                let whole: u64 = whole.trim_start_matches('0').parse().or_else(|_| {
                    if whole.bytes().all(|b| b == b'0') {
                        Ok(0)
                    } else {
                        Err(AmountError::Overflow)
                    }
                })?;
                let mut frac: u64 = 0;
                for b in fraction.bytes() {
                    frac = frac * 10 + u64::from(b - b'0');
                }
                let pad = usize::from(decimals) - fraction.len();
                let frac = frac
                    .checked_mul(10u64.checked_pow(pad as u32).ok_or(AmountError::Overflow)?)
                    .ok_or(AmountError::Overflow)?;
                whole
                    .checked_mul(scale)
                    .and_then(|w| w.checked_add(frac))
                    .ok_or(AmountError::Overflow)
            }
        }
    }
}

fn scale(decimals: u8) -> Result<u64, AmountError> {
    if decimals > MAX_DECIMALS {
        return Err(AmountError::Decimals(decimals));
    }
    10u64
        .checked_pow(u32::from(decimals))
        .ok_or(AmountError::Decimals(decimals))
}

/// Parses `s` for a mint with `decimals` decimals.
pub fn parse_amount(s: &str, decimals: u8) -> Result<u64, AmountError> {
    s.parse::<AmountInput>()?.to_base_units(decimals)
}

/// `amount` base units as an exact decimal string with all `decimals`
/// places (`1500000`, 6 → `1.500000`); without a point when `decimals` is 0.
pub fn format_ui(amount: u64, decimals: u8) -> String {
    if decimals == 0 {
        return amount.to_string();
    }
    let digits = format!("{amount:0>width$}", width = usize::from(decimals) + 1);
    let (whole, fraction) = digits.split_at(digits.len() - usize::from(decimals));
    format!("{whole}.{fraction}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn base_units_and_decimals() {
        assert_eq!(parse_amount("1000", 6), Ok(1000));
        assert_eq!(parse_amount("1.5", 6), Ok(1_500_000));
        assert_eq!(parse_amount("0.000001", 6), Ok(1));
        assert_eq!(parse_amount("1.500000000", 6), Ok(1_500_000));
        assert_eq!(parse_amount("007.25", 2), Ok(725));
        assert_eq!(parse_amount("0.0", 6), Ok(0));
        assert_eq!(parse_amount(" 42 ", 0), Ok(42));
        assert_eq!(parse_amount("18446744073709551615", 6), Ok(u64::MAX));
        assert_eq!(parse_amount("18446744073709.551615", 6), Ok(u64::MAX));
        assert_eq!(parse_amount("1.8446744073709551615", 19), Ok(u64::MAX));
    }

    #[test]
    fn edge_cases_are_rejected() {
        assert_eq!(parse_amount("", 6), Err(AmountError::Empty));
        assert_eq!(parse_amount("   ", 6), Err(AmountError::Empty));
        assert_eq!(parse_amount("-1", 6), Err(AmountError::Negative));
        assert_eq!(parse_amount("-0.5", 6), Err(AmountError::Negative));
        assert_eq!(
            parse_amount("1.0000001", 6),
            Err(AmountError::TooManyDecimals {
                given: 7,
                decimals: 6
            })
        );
        assert_eq!(
            parse_amount("1.5", 0),
            Err(AmountError::TooManyDecimals {
                given: 1,
                decimals: 0
            })
        );
        assert_eq!(
            parse_amount("18446744073709551616", 6),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            parse_amount("18446744073709.551616", 6),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            parse_amount("99999999999999999999999.0", 6),
            Err(AmountError::Overflow)
        );
        assert_eq!(parse_amount("1.5", 20), Err(AmountError::Decimals(20)));
        for bad in [
            "1.", ".5", "1.2.3", "+1", "1e6", "0x10", "1,5", "1_000", "abc", "1 000",
        ] {
            assert_eq!(parse_amount(bad, 6), Err(AmountError::Syntax), "{bad}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_ui(1_500_000, 6), "1.500000");
        assert_eq!(format_ui(1, 6), "0.000001");
        assert_eq!(format_ui(0, 6), "0.000000");
        assert_eq!(format_ui(42, 0), "42");
        assert_eq!(format_ui(u64::MAX, 19), "1.8446744073709551615");
    }

    proptest! {
        #[test]
        fn ui_round_trip(amount in any::<u64>(), decimals in 0u8..=MAX_DECIMALS) {
            let text = format_ui(amount, decimals);
            prop_assert_eq!(parse_amount(&text, decimals), Ok(amount));
        }

        #[test]
        fn base_units_ignore_decimals(amount in any::<u64>(), decimals in 0u8..=MAX_DECIMALS) {
            prop_assert_eq!(parse_amount(&amount.to_string(), decimals), Ok(amount));
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}", decimals in any::<u8>()) {
            let _ = parse_amount(&s, decimals);
        }
    }
}
