//! `watchsim validate`: checks real watch streams against the stream invariants of SPEC §6 that a
//! single client can see (docs/validate.md). Two input formats, told apart by their first JSON
//! value:
//!
//! - etcd: `etcdctl watch -w json` output, one WatchResponse a line ([`etcd`]); histories from
//!   `etcdctl get --prefix -w json [--rev N]` (`--history FILE`) for the gap check;
//! - Kubernetes: `kubectl get -w --output-watch-events -o json` (pretty-printed objects one after
//!   the other) or JSON lines of `{"type", "object"}` ([`kube`]).
//!
//! Every finding names its file and line. Parsing never panics: malformed input is an
//! [`InputError`] (exit 2), a broken invariant a [`Finding`] with `violation = true` (exit 1).

pub mod etcd;
pub mod kube;

use serde_json::Value;

/// One thing `validate` found in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// File it was found in.
    pub file: String,
    /// 1-based line where the offending JSON value starts.
    pub line: usize,
    /// SPEC §6 invariant name (`watch-order`, `watch-unique`, `watch-no-gap`, `no-time-travel`),
    /// or `compacted` for a watch cancelled by compaction (reported, not a violation).
    pub invariant: &'static str,
    /// What happened, in words.
    pub message: String,
    /// Whether it breaks an invariant (exit 1) or is only reported.
    pub violation: bool,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}{}: {}",
            self.file,
            self.line,
            if self.violation { "" } else { "note: " },
            self.invariant,
            self.message
        )
    }
}

/// Input that cannot be read as a watch stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct InputError {
    /// File.
    pub file: String,
    /// 1-based line (0 when the whole file is at fault).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The JSON values of a file (JSON lines, or pretty-printed values one after the other), each
/// with the 1-based line it starts on.
pub fn json_values(file: &str, text: &str) -> Result<Vec<(usize, Value)>, InputError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut consumed = 0;
    loop {
        let start = consumed
            + text[consumed..]
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(text.len() - consumed);
        let line = line_of(text, start);
        match stream.next() {
            None => break,
            Some(Ok(v)) => out.push((line, v)),
            Some(Err(e)) => {
                return Err(InputError {
                    file: file.to_string(),
                    line: e.line().max(1),
                    message: format!("not JSON: {e}"),
                });
            }
        }
        consumed = stream.byte_offset();
    }
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The format of a stream, from its first value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `etcdctl watch -w json`.
    Etcd,
    /// Kubernetes watch events.
    Kube,
}

/// Which format `v` (a stream's first value) belongs to.
pub fn detect(v: &Value) -> Option<Format> {
    if v.get("Header").is_some() || v.get("Events").is_some() {
        Some(Format::Etcd)
    } else if v.get("type").is_some() && v.get("object").is_some() {
        Some(Format::Kube)
    } else {
        None
    }
}

/// Validates `streams` ((file, text), in the order given) with the etcd `histories` ((file,
/// text) of `etcdctl get -w json` outputs): the findings, in file order.
pub fn validate(
    streams: &[(String, String)],
    histories: &[(String, String)],
) -> Result<Vec<Finding>, InputError> {
    let mut history = etcd::History::default();
    for (file, text) in histories {
        history.add(file, text)?;
    }
    let mut findings = Vec::new();
    let mut client = kube::Client::default();
    for (file, text) in streams {
        let values = json_values(file, text)?;
        let Some((line, first)) = values.first() else {
            continue;
        };
        match detect(first) {
            Some(Format::Etcd) => findings.extend(etcd::check(file, &values, &history)?),
            Some(Format::Kube) => findings.extend(client.check(file, &values)?),
            None => {
                return Err(InputError {
                    file: file.clone(),
                    line: *line,
                    message: "neither an `etcdctl watch -w json` response (Header, Events) nor a Kubernetes watch event (type, object)".into(),
                });
            }
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_first_line() {
        let v = json_values("f", "{\"a\": 1}\n\n{\n  \"b\": 2\n}\n").unwrap();
        assert_eq!(v.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 3]);
        let e = json_values("f", "{\"a\": 1}\n{\"b\": \n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }
}
