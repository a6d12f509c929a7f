//! etcd watch streams as `etcdctl watch -w json` prints them: one WatchResponse a line,
//! `{"Header": {"revision"}, "Events": [{"type": 1?, "kv": {"key", "mod_revision", ...}}],
//! "CompactRevision", "Canceled", "Created"}` (a PUT's `type` 0 is omitted, keys are base64).
//! A response without events that is neither canceled nor created is a progress notify.
//!
//! Checks: event revisions never go back (`watch-order`; events of one transaction share a
//! revision, with distinct keys), no (key, revision) twice (`watch-unique`), no event at or
//! below a revision a progress notify already vouched for (`watch-no-gap`), and, with a
//! history (`etcdctl get -w json` of the same key or prefix, at any revisions), every version in
//! the history whose revision lies between the stream's first event and the last revision it
//! vouched for was delivered (`watch-no-gap`). A cancellation by compaction is reported (the
//! client must relist), not a violation.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Finding, InputError, json_values};

/// Versions known from `etcdctl get -w json` outputs: (key, mod_revision) and where each was
/// read.
#[derive(Debug, Default)]
pub struct History {
    versions: BTreeSet<(String, i64)>,
}

impl History {
    /// Adds the `etcdctl get -w json` outputs of `text` (one JSON value each).
    pub fn add(&mut self, file: &str, text: &str) -> Result<(), InputError> {
        for (line, v) in json_values(file, text)? {
            let bad = |message: &str| InputError {
                file: file.to_string(),
                line,
                message: message.to_string(),
            };
            if v.get("header").is_none() {
                return Err(bad("not an `etcdctl get -w json` response (no \"header\")"));
            }
            for kv in v
                .get("kvs")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                let (Some(key), Some(rev)) = (
                    kv.get("key").and_then(Value::as_str),
                    kv.get("mod_revision").and_then(Value::as_i64),
                ) else {
                    return Err(bad("a kv without \"key\" or \"mod_revision\""));
                };
                self.versions.insert((key.to_string(), rev));
            }
        }
        Ok(())
    }
}

/// Checks one etcd stream (`values` with their lines) against `history`.
pub fn check(
    file: &str,
    values: &[(usize, Value)],
    history: &History,
) -> Result<Vec<Finding>, InputError> {
    let mut out = Vec::new();
    let finding =
        |line: usize, invariant: &'static str, message: String, violation: bool| Finding {
            file: file.to_string(),
            line,
            invariant,
            message,
            violation,
        };
    let mut seen: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut last_rev: i64 = 0;
    let mut first_rev: Option<i64> = None;
    let mut vouched: i64 = 0;
    let mut last_line = 0;
    for (line, v) in values {
        let line = *line;
        last_line = line;
        let bad = |message: String| InputError {
            file: file.to_string(),
            line,
            message,
        };
        let header_rev = v
            .get("Header")
            .and_then(|h| h.get("revision"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let events = match v.get("Events") {
            Some(Value::Array(a)) => a.as_slice(),
            Some(Value::Null) | None => &[],
            Some(_) => return Err(bad("\"Events\" is not an array".into())),
        };
        let canceled = v.get("Canceled").and_then(Value::as_bool).unwrap_or(false);
        let created = v.get("Created").and_then(Value::as_bool).unwrap_or(false);
        if canceled {
            let compact = v
                .get("CompactRevision")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let why = if compact > 0 {
                format!(
                    "the watch was canceled: the revision it needed next is compacted (compact revision {compact}); the client must list again"
                )
            } else {
                "the watch was canceled by the server".to_string()
            };
            out.push(finding(line, "compacted", why, false));
            continue;
        }
        if events.is_empty() && !created {
            if header_rev < last_rev {
                out.push(finding(
                    line,
                    "watch-order",
                    format!(
                        "a progress notify at revision {header_rev} after an event at revision {last_rev}"
                    ),
                    true,
                ));
            }
            vouched = vouched.max(header_rev);
            continue;
        }
        for ev in events {
            let kv = ev
                .get("kv")
                .ok_or_else(|| bad("an event without \"kv\"".into()))?;
            let (Some(key), Some(rev)) = (
                kv.get("key").and_then(Value::as_str),
                kv.get("mod_revision").and_then(Value::as_i64),
            ) else {
                return Err(bad("an event kv without \"key\" or \"mod_revision\"".into()));
            };
            let kind = match ev.get("type").and_then(Value::as_i64).unwrap_or(0) {
                0 => "PUT",
                1 => "DELETE",
                t => return Err(bad(format!("unknown event type {t}"))),
            };
            let shown = show_key(key);
            first_rev.get_or_insert(rev);
            if !seen.insert((key.to_string(), rev)) {
                out.push(finding(
                    line,
                    "watch-unique",
                    format!("{kind} {shown} at revision {rev} delivered a second time"),
                    true,
                ));
            } else if rev < last_rev {
                out.push(finding(
                    line,
                    "watch-order",
                    format!(
                        "{kind} {shown} at revision {rev} after an event at revision {last_rev}"
                    ),
                    true,
                ));
            } else if rev <= vouched {
                out.push(finding(
                    line,
                    "watch-no-gap",
                    format!(
                        "{kind} {shown} at revision {rev} arrived after a progress notify at revision {vouched}, which said every event up to it had been delivered"
                    ),
                    true,
                ));
            }
            last_rev = last_rev.max(rev);
        }
    }
    if let Some(first) = first_rev {
        let end = last_rev.max(vouched);
        for (key, rev) in history.versions.iter() {
            if (first..=end).contains(rev) && !seen.contains(&(key.clone(), *rev)) {
                out.push(finding(
                    last_line,
                    "watch-no-gap",
                    format!(
                        "the history has {} at revision {rev}, within the revisions {first}..={end} this stream covered, but the stream never delivered it",
                        show_key(key)
                    ),
                    true,
                ));
            }
        }
    }
    Ok(out)
}

/// A key for messages: decoded from base64 when it is printable, else as given.
fn show_key(b64: &str) -> String {
    decode_base64(b64)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.chars().all(|c| !c.is_control()))
        .unwrap_or_else(|| b64.to_string())
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shown_decoded() {
        assert_eq!(show_key("L3IvYQ=="), "/r/a");
        assert_eq!(show_key("L3IvYw=="), "/r/c");
        assert_eq!(show_key("!!"), "!!");
    }
}
