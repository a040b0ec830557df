//! The /proc field readers custos uses: /proc/PID/stat (custos's own parser), statm
//! (procfs-core's parser, as custos calls it) and /proc/PID/status (custos's own field reader).
//! One input is fed to all three.
#![no_main]
use libfuzzer_sys::fuzz_target;
use procfs_core::process::StatM;
use procfs_core::FromRead;

fuzz_target!(|data: &[u8]| {
    let _ = custos::procs::parse_stat(data);
    if let Ok(m) = StatM::from_read(data) {
        let _ = m.resident.saturating_mul(4096);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for key in ["TracerPid", "Tgid", "Groups"] {
            let _ = custos::procs::status_value(text, key);
        }
    }
});
