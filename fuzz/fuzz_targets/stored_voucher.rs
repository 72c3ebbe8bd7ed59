//! A voucher record read back from redb or a shared Redis
//! (`Accepted::decode`): never panics, and what it accepts re-encodes to
//! the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_verifier::Accepted;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Accepted::decode(data) {
        assert_eq!(&a.encode()[..], data);
    }
});
