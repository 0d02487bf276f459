//! The agent's config loader on arbitrary text: a config or an error naming
//! where, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = vedette_agent::config::Config::from_yaml("fuzz.yaml", text) {
            assert!(e.to_string().contains("fuzz.yaml"), "{e}");
        }
    }
});
