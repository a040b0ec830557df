//! `custos import-monit` from bytes: a control file read as text, converted, and the config it
//! writes loaded as `custos check` loads it. Includes resolve under directories that do not
//! exist, so the fuzzer reads no file of this machine.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/nonexistent-custos-fuzz/monitrc");
    let root = std::path::Path::new("/nonexistent-custos-fuzz-root");
    match custos::monit::import_text(path, text, Some(root)) {
        Ok(imported) => {
            if let Err(errors) = custos::config::parse_bytes(imported.toml.as_bytes()) {
                panic!("the converted config does not load: {errors:?}\n{}", imported.toml);
            }
        }
        Err(e) => assert!(e.contains(": error: "), "an error without FILE:LINE: {e}"),
    }
});
