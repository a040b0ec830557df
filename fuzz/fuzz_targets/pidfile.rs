//! The pidfile parser: what a service (or anyone who can write its pidfile) leaves there.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(pid) = custos::procs::parse_pid(data) {
        assert!((1..=4_194_304).contains(&pid), "parsed PID {pid} out of range");
    }
});
