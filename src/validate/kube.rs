//! Kubernetes watch streams: `kubectl get -w --output-watch-events -o json` output (pretty-printed
//! `{"type", "object"}` values one after the other) or JSON lines of the same shape, as a watch
//! request returns them. Every file is one stream of one client; the files given together are
//! that client's successive streams (a relist starts a new one), in the order given.
//!
//! A stream's leading ADDED events are its initial list (kubectl prints every listed object as
//! ADDED; a streaming list sends them likewise), in no particular order. From the first other
//! event on, the watch's events' resourceVersions strictly increase and stay above every listed
//! one (`watch-order`), a BOOKMARK never goes back (`watch-order`), no object version arrives
//! twice (`watch-unique`), and each stream starts (its list's newest item, or its first event)
//! at or above the newest resourceVersion the client observed on an earlier stream
//! (`no-time-travel`, Kubernetes #59848). An ERROR event (410 Expired, ...) is reported, not a
//! violation: the client lists again. resourceVersions are compared as integers, which they are
//! on every etcd-backed apiserver; a non-numeric one is an input error.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Finding, InputError};

/// One client across its streams: the newest resourceVersion it has observed.
#[derive(Debug, Default)]
pub struct Client {
    observed_max: Option<(i64, String, usize)>,
}

impl Client {
    /// Checks the next stream of this client.
    pub fn check(
        &mut self,
        file: &str,
        values: &[(usize, Value)],
    ) -> Result<Vec<Finding>, InputError> {
        let mut out = Vec::new();
        let finding = |line: usize, invariant: &'static str, message: String| Finding {
            file: file.to_string(),
            line,
            invariant,
            message,
            violation: invariant != "expired",
        };
        let mut seen: BTreeSet<(String, i64)> = BTreeSet::new();
        let mut listing = true;
        let mut list_max: Option<i64> = None;
        let mut last: i64 = 0;
        let mut bookmark: i64 = 0;
        let mut started = false;
        let mut stream_max: i64 = 0;
        let previous = self.observed_max.clone();
        for (line, v) in values {
            let line = *line;
            let bad = |message: String| InputError {
                file: file.to_string(),
                line,
                message,
            };
            let kind = v
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("an event without a string \"type\"".into()))?;
            let object = v
                .get("object")
                .ok_or_else(|| bad("an event without \"object\"".into()))?;
            if kind == "ERROR" {
                let code = object.get("code").and_then(Value::as_i64).unwrap_or(0);
                let msg = object.get("message").and_then(Value::as_str).unwrap_or("");
                out.push(finding(
                    line,
                    "expired",
                    format!(
                        "the watch ended with an error: {code} {msg}; the client must list again"
                    ),
                ));
                continue;
            }
            if !matches!(kind, "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK") {
                return Err(bad(format!("unknown event type {kind:?}")));
            }
            let meta = object.get("metadata");
            let rv_text = meta
                .and_then(|m| m.get("resourceVersion"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("an object without metadata.resourceVersion".into()))?;
            let rv: i64 = rv_text.parse().map_err(|_| {
                bad(format!(
                    "resourceVersion {rv_text:?} is not a number (validate compares them as etcd revisions)"
                ))
            })?;
            let name = meta
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let namespace = meta
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let id = if namespace.is_empty() {
                name.to_string()
            } else {
                format!("{namespace}/{name}")
            };
            if listing && kind != "ADDED" {
                listing = false;
                last = list_max.unwrap_or(0);
                bookmark = last;
            }
            if !started {
                // The stream's start: checked once the list is complete (or at its first event).
                if !listing {
                    started = true;
                    let start = list_max.unwrap_or(rv);
                    self.check_start(start, &previous, file, line, &mut out);
                }
            }
            if kind == "BOOKMARK" {
                if rv < bookmark {
                    out.push(finding(
                        line,
                        "watch-order",
                        format!(
                            "a BOOKMARK at resourceVersion {rv} after one at {bookmark}: bookmarks never go back"
                        ),
                    ));
                }
                if rv < last {
                    out.push(finding(
                        line,
                        "watch-order",
                        format!("a BOOKMARK at resourceVersion {rv} after an event at {last}"),
                    ));
                }
                bookmark = bookmark.max(rv);
                stream_max = stream_max.max(rv);
                continue;
            }
            if !seen.insert((id.clone(), rv)) {
                out.push(finding(
                    line,
                    "watch-unique",
                    format!("{kind} {id} at resourceVersion {rv} delivered a second time"),
                ));
            } else if listing {
                list_max = Some(list_max.map_or(rv, |m| m.max(rv)));
            } else if rv <= last {
                out.push(finding(
                    line,
                    "watch-order",
                    format!("{kind} {id} at resourceVersion {rv} after resourceVersion {last}"),
                ));
            }
            if !listing {
                last = last.max(rv);
            }
            stream_max = stream_max.max(rv);
        }
        if !started && let Some(start) = list_max {
            let line = values.last().map_or(0, |(l, _)| *l);
            self.check_start(start, &previous, file, line, &mut out);
        }
        if stream_max > 0
            && self
                .observed_max
                .as_ref()
                .is_none_or(|(m, _, _)| stream_max > *m)
        {
            let line = values.last().map_or(0, |(l, _)| *l);
            self.observed_max = Some((stream_max, file.to_string(), line));
        }
        Ok(out)
    }

    fn check_start(
        &self,
        start: i64,
        previous: &Option<(i64, String, usize)>,
        file: &str,
        line: usize,
        out: &mut Vec<Finding>,
    ) {
        if let Some((seen, pfile, pline)) = previous
            && start < *seen
        {
            out.push(Finding {
                file: file.to_string(),
                line,
                invariant: "no-time-travel",
                message: format!(
                    "this stream starts at resourceVersion {start}, older than {seen} the client had already observed ({pfile}:{pline}): time travel (Kubernetes #59848)"
                ),
                violation: true,
            });
        }
    }
}
