//! Account types. Each has an `invariant()` called at the end of every
//! instruction that mutates it.
pub mod channel;
pub mod vault;

pub use channel::*;
pub use vault::*;
