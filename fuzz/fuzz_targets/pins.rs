//! The pins-file reader: `state_dir/pins`, whatever is there at start.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(saved) = custos::pins::Saved::parse(text) {
            let _ = saved.render();
        }
    }
});
