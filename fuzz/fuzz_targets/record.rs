//! The record-file reader: whatever is in state_dir at start (truncated, garbage, replaced).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = custos::record::parse(data) {
        assert!(entries.len() <= custos::record::MAX_RECORDS);
    }
});
