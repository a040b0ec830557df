//! The /proc field readers custos uses: /proc/PID/stat, statm, cmdline and status (custos's own
//! parsers). One input is fed to all of them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = custos::procs::parse_stat(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(pages) = custos::checks::statm_resident(text) {
            let _ = pages.saturating_mul(4096);
        }
        let _ = custos::procs::args_text(text);
        for key in ["TracerPid", "Tgid", "Groups"] {
            let _ = custos::procs::status_value(text, key);
        }
    }
});
