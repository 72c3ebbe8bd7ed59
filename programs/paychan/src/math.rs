//! Pure channel arithmetic, checked everywhere, unit-tested beside it.
use anchor_lang::prelude::*;

use crate::{constants::OPEN_SLOT_WINDOW, error::PaychanError};

/// Amount a voucher for `cumulative` pays on top of `settled`, capped by `deposit`.
pub fn settle_delta(settled: u64, cumulative: u64, deposit: u64) -> Result<u64> {
    require!(
        cumulative <= deposit,
        PaychanError::CumulativeExceedsDeposit
    );
    require!(cumulative > settled, PaychanError::CumulativeNotIncreasing);
    cumulative
        .checked_sub(settled)
        .ok_or_else(|| PaychanError::Overflow.into())
}

/// deposit − settled − refunded.
pub fn remaining(deposit: u64, settled: u64, refunded: u64) -> Result<u64> {
    deposit
        .checked_sub(settled)
        .and_then(|v| v.checked_sub(refunded))
        .ok_or_else(|| PaychanError::InvariantViolated.into())
}

/// closure_started_at + grace_period.
pub fn grace_ends_at(closure_started_at: i64, grace_period: i64) -> Result<i64> {
    closure_started_at
        .checked_add(grace_period)
        .ok_or_else(|| PaychanError::Overflow.into())
}

/// Checks that `open_slot` is a recent slot: not in the future and at most
/// [`OPEN_SLOT_WINDOW`] slots old.
pub fn check_open_slot(open_slot: u64, current_slot: u64) -> Result<()> {
    require!(open_slot <= current_slot, PaychanError::OpenSlotInFuture);
    let age = current_slot
        .checked_sub(open_slot)
        .ok_or(PaychanError::Overflow)?;
    require!(age <= OPEN_SLOT_WINDOW, PaychanError::OpenSlotExpired);
    Ok(())
}

/// Whether `open` can no longer accept `open_slot` at `current_slot`.
pub fn open_window_passed(open_slot: u64, current_slot: u64) -> bool {
    match open_slot.checked_add(OPEN_SLOT_WINDOW) {
        Some(last) => current_slot > last,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_is_the_increment() {
        assert_eq!(settle_delta(10, 25, 100).ok(), Some(15));
        assert_eq!(settle_delta(0, 100, 100).ok(), Some(100));
    }

    #[test]
    fn delta_rejects_non_increasing_and_over_deposit() {
        assert_eq!(
            settle_delta(10, 10, 100).err(),
            Some(PaychanError::CumulativeNotIncreasing.into())
        );
        assert_eq!(
            settle_delta(10, 9, 100).err(),
            Some(PaychanError::CumulativeNotIncreasing.into())
        );
        assert_eq!(
            settle_delta(10, 101, 100).err(),
            Some(PaychanError::CumulativeExceedsDeposit.into())
        );
    }

    #[test]
    fn remaining_is_checked() {
        assert_eq!(remaining(100, 30, 0).ok(), Some(70));
        assert_eq!(remaining(100, 30, 70).ok(), Some(0));
        assert!(remaining(100, 30, 71).is_err());
    }

    #[test]
    fn grace_end_overflow_is_an_error() {
        assert_eq!(grace_ends_at(1_000, 600).ok(), Some(1_600));
        assert!(grace_ends_at(i64::MAX, 1).is_err());
    }

    #[test]
    fn open_slot_window() {
        assert!(check_open_slot(100, 100).is_ok());
        assert!(check_open_slot(100, 100 + OPEN_SLOT_WINDOW).is_ok());
        assert_eq!(
            check_open_slot(100, 101 + OPEN_SLOT_WINDOW).err(),
            Some(PaychanError::OpenSlotExpired.into())
        );
        assert_eq!(
            check_open_slot(101, 100).err(),
            Some(PaychanError::OpenSlotInFuture.into())
        );
        assert!(!open_window_passed(100, 100 + OPEN_SLOT_WINDOW));
        assert!(open_window_passed(100, 101 + OPEN_SLOT_WINDOW));
        assert!(!open_window_passed(u64::MAX, u64::MAX));
    }
}
