//! `--set KEY=VALUE` applied to a bundled scenario: the first line of the input is the override
//! (the rest, if any, a second one); any input must load or give a `ScenarioError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchsim::scenario;

const BASE: &str = include_str!("../../sim-scenarios/relist-storm-restart.toml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let overrides: Vec<String> = text.splitn(2, '\n').map(String::from).collect();
    let _ = scenario::load_str("base.toml", BASE, &overrides);
    let _ = scenario::effective_table("base.toml", BASE, &overrides);
});
