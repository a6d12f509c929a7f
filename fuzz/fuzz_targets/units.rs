//! Durations and sizes: parsing never panics, and what parses prints back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchsim::scenario::{format_ns, parse_bytes, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(text) {
        let again = parse_duration(&format_ns(d.0)).expect("a formatted duration parses");
        assert_eq!(again, d, "{text:?} -> {} -> {}", format_ns(d.0), again.0);
    }
    let _ = parse_bytes(text);
    let _ = watchsim::scenario::budget::MemoryLimit::from_flag(text);
});
