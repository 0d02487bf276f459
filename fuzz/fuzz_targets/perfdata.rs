//! The Nagios plugin output parser on arbitrary text: never panics, and
//! every value it returns is finite with a non-empty label.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (_message, perf) = vedette_agent::checks::perfdata::parse_output(&text);
    for p in perf {
        assert!(p.value.is_finite(), "{p:?}");
        assert!(!p.label.is_empty(), "{p:?}");
    }
});
