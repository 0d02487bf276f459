//! The push decoder and validator on arbitrary bodies, plain and gzip: never
//! panics, and whatever it accepts survives a round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vedette_protocol::{decode, Encoding, Limits};

const NOW: i64 = 1_763_700_000_000;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let encoding = if data.starts_with(&[0x1f, 0x8b]) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    if let Ok(batch) = decode(data, encoding, &limits, NOW) {
        let again = serde_json::to_vec(&batch).expect("an accepted batch serializes");
        let back = decode(&again, Encoding::Identity, &limits, NOW)
            .expect("an accepted batch, re-encoded, is accepted");
        assert_eq!(batch, back);
    }
});
