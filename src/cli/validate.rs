//! `watchsim validate FILE... [--history FILE]...`: checks recorded watch streams
//! (`crate::validate`) and prints one line per finding, `FILE:LINE: invariant: message`. Exit 0
//! when no invariant is broken (reported cancellations and expiries included), 1 on a violation,
//! 2 on unreadable or malformed input.

use std::path::PathBuf;
use std::process::ExitCode;

use super::usage_error;

/// Runs `validate` on `files` (streams, in order) with the etcd `history` files.
pub(super) fn validate(files: &[PathBuf], history: &[PathBuf]) -> ExitCode {
    let read = |paths: &[PathBuf]| -> Result<Vec<(String, String)>, String> {
        paths
            .iter()
            .map(|p| {
                let name = p.display().to_string();
                std::fs::read_to_string(p)
                    .map(|text| (name.clone(), text))
                    .map_err(|e| format!("{name}: cannot read: {e}"))
            })
            .collect()
    };
    let (streams, histories) = match (read(files), read(history)) {
        (Ok(s), Ok(h)) => (s, h),
        (Err(e), _) | (_, Err(e)) => return usage_error(&e),
    };
    let findings = match crate::validate::validate(&streams, &histories) {
        Ok(f) => f,
        Err(e) => return usage_error(&e.to_string()),
    };
    for f in &findings {
        println!("{f}");
    }
    let violations = findings.iter().filter(|f| f.violation).count();
    println!(
        "{} stream(s), {} violation(s), {} note(s)",
        streams.len(),
        violations,
        findings.len() - violations
    );
    if violations > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
