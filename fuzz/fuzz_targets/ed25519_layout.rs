//! The strict Ed25519 precompile parser: never panics; anything it accepts is
//! exactly what the canonical builder produces for the same entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_voucher::{ed25519_instruction_data, parse_ed25519_instruction_data};

fuzz_target!(|input: (u8, u8, &[u8])| {
    let (count, message_len, data) = input;
    let (count, message_len) = (usize::from(count % 10), usize::from(message_len));
    if let Ok(records) = parse_ed25519_instruction_data(data, count, message_len) {
        let entries: Vec<_> = records.iter().collect();
        let built = ed25519_instruction_data(&entries).expect("accepted entries rebuild");
        assert_eq!(built, data);
    }
});
