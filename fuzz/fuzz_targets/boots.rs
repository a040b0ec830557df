//! The boots-file reader: `state_dir/boots`, whatever is there at start.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(boots) = custos::boot::parse(data) {
        assert!(boots.len() <= custos::limits::MAX_BOOTS);
    }
});
