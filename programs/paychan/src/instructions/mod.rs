//! One module per instruction: accounts, arguments, validation and handler.
pub mod close;
pub mod close_out;
pub mod finalize;
pub mod migrate_vault;
pub mod open;
pub mod reclaim;
pub mod request_close;
pub mod settle;
pub mod settle_batch;
pub mod settle_signed;
pub mod top_up;

pub use close::*;
pub use finalize::*;
pub use migrate_vault::*;
pub use open::*;
pub use reclaim::*;
pub use request_close::*;
pub use settle::*;
pub use settle_signed::*;
pub use top_up::*;
