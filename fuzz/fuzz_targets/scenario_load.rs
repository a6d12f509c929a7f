//! Scenario text -> load (parse, deserialize, validate), then the memory estimate: any input
//! must give a scenario or a `ScenarioError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchsim::scenario::{self, budget};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = scenario::load_str("fuzz.toml", text, &[]) {
        let e = budget::estimate(&s);
        assert!(e.total >= e.parts.iter().map(|p| p.bytes).max().unwrap_or(0));
        let limit = budget::MemoryLimit::from_flag("1GiB").expect("a valid size");
        let _ = scenario::check_memory("fuzz.toml", text, &[], &s, 2, &limit);
    }
});
