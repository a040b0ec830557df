//! The config loader from bytes: UTF-8 check, TOML, validation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match custos::config::parse_bytes(data) {
        Ok(c) => {
            let _ = format!("{c:?}");
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an error result with no error");
            let _ = format!("{errors:?}");
        }
    }
});
