//! Capsule text -> read -> replay: a corrupt, foreign or diverging capsule is an error (exit 2
//! or 3 in the CLI), never a panic. Capsules whose scenario needs more than 256 MiB are refused
//! by the memory check, as `watchsim replay` refuses them beyond its limit.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use watchsim::check::capsule::Capsule;
use watchsim::check::replay::replay_within;
use watchsim::scenario::budget::MemoryLimit;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(capsule) = Capsule::parse(Path::new("fuzz.capsule.jsonl"), text) else {
        return;
    };
    let limit = MemoryLimit::from_flag("256MiB").expect("a valid size");
    let _ = replay_within(&capsule, None, &limit);
});
