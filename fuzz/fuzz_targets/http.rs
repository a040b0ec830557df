//! The HTTP reply reader, fed the reply as it could arrive: every prefix, then the whole reply
//! with and without EOF. The first two bytes choose the expected status and content.
#![no_main]
use custos::checks::{evaluate_http, Http};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sel, reply) = data.split_at(data.len().min(2));
    let want = match sel.first() {
        Some(b) if b % 2 == 0 => 200,
        Some(b) => 100 + u16::from(*b),
        None => 200,
    };
    let expect: Option<&[u8]> = match sel.get(1) {
        Some(b) if b % 3 == 0 => None,
        Some(b) if b % 3 == 1 => Some(b"ok"),
        _ => Some(b""),
    };
    // Prefixes, as a trickling server sends them; capped so one input stays cheap.
    let step = (reply.len() / 64).max(1);
    let mut n = 0;
    while n < reply.len() {
        let _ = evaluate_http(&reply[..n], false, want, expect);
        n += step;
    }
    let _ = evaluate_http(reply, false, want, expect);
    let end = evaluate_http(reply, true, want, expect);
    assert!(!matches!(end, Http::NeedMore), "NeedMore after EOF");
});
