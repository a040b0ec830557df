//! The control-request parser: one line from a client of the control socket.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = custos::control::parse_request(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = custos::control::parse_flat_object(text);
    }
});
