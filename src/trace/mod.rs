//! The trace format (SPEC §5): JSON Lines with a header (format, version, scenario text, seed,
//! overrides), one line per applied step, and a footer (trace hash, violations). Every step line
//! carries the action applied (`fire`), so a trace is also the action list that replay applies.
//! The trace hash is FNV-1a 64 over the step lines' bytes: stable across machines.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

mod line;
mod pieces;
mod pipeline;

use line::LineBuf;
use pieces::LinePieces;
pub use pipeline::StepSink;

use crate::kernel::{EventKey, Fnv64, Nanos};
use crate::proto::Actor;
use crate::proto::step::Outcome;

/// The `format` field of a trace header.
pub const TRACE_FORMAT: &str = "watchsim-trace";
/// The current trace format version.
pub const TRACE_VERSION: u32 = 1;

/// The first line of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// Always `watchsim-trace`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Version of watchsim that wrote it.
    pub watchsim_version: String,
    /// The scenario's TOML text.
    pub scenario: String,
    /// Seed in force.
    pub seed: u64,
    /// `--set` overrides in force, in order.
    pub overrides: Vec<String>,
}

/// One step line.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord<'a> {
    /// Step number, from 1.
    pub step: u64,
    /// Virtual time of the step.
    pub t_ns: Nanos,
    /// The action applied: the agenda entry fired.
    pub fire: EventKey,
    /// What it did.
    #[serde(flatten)]
    pub outcome: &'a Outcome,
}

/// The last line of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceFooter {
    /// Hash of all step lines (16 hex digits).
    pub trace_hash: String,
    /// Invariant and bound violations, by name.
    pub violations: Vec<String>,
    /// Virtual time the run's end-of-run checks were judged at (absent in older traces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<Nanos>,
}

/// Hashes every step line and, when given a sink, writes the trace.
pub struct TraceWriter {
    hash: Fnv64,
    /// The line, when the fast writer could write it.
    fast: Box<LineBuf>,
    /// The fast writer's hash alone, for a writer with no sink.
    fast_hash: LineBuf<false>,
    /// The line, when a name needed the reference writer.
    line: Vec<u8>,
    names: LinePieces,
    sink: Option<Box<dyn Write + Send>>,
}

impl TraceWriter {
    /// A writer that only hashes.
    pub fn hash_only() -> Self {
        TraceWriter {
            hash: Fnv64::new(),
            fast: Box::default(),
            fast_hash: LineBuf::default(),
            line: Vec::with_capacity(256),
            names: LinePieces::default(),
            sink: None,
        }
    }

    /// A writer that hashes and writes to `sink`, starting with `header`.
    pub fn to_sink(mut sink: Box<dyn Write + Send>, header: &TraceHeader) -> io::Result<Self> {
        serde_json::to_writer(&mut sink, header)?;
        sink.write_all(b"\n")?;
        Ok(TraceWriter {
            hash: Fnv64::new(),
            fast: Box::default(),
            fast_hash: LineBuf::default(),
            line: Vec::with_capacity(256),
            names: LinePieces::default(),
            sink: Some(sink),
        })
    }

    /// Records one step.
    pub fn step(&mut self, record: &StepRecord<'_>) -> io::Result<()> {
        if self.sink.is_none()
            && line::write_fast(
                &mut self.fast_hash,
                record,
                &mut self.names,
                self.hash.finish(),
            )
        {
            self.hash = Fnv64::from_state(self.fast_hash.hash());
            self.hash.update(b"\n");
            return Ok(());
        }
        let line: &[u8] =
            if line::write_fast(&mut self.fast, record, &mut self.names, self.hash.finish()) {
                self.hash = Fnv64::from_state(self.fast.hash());
                self.fast.as_bytes()
            } else {
                self.line.clear();
                write_line(&mut self.line, record, &mut self.names)?;
                self.hash.update(&self.line);
                &self.line
            };
        self.hash.update(b"\n");
        if let Some(sink) = self.sink.as_mut() {
            sink.write_all(line)?;
            sink.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The hash so far, as 16 hex digits.
    pub fn hash_hex(&self) -> String {
        format!("{:016x}", self.hash.finish())
    }

    /// Writes the footer and flushes.
    pub fn finish(self, violations: Vec<String>) -> io::Result<String> {
        let footer = TraceFooter {
            trace_hash: self.hash_hex(),
            violations,
            end_ns: None,
        };
        self.finish_with(&footer)
    }

    /// Writes `footer` as the last line (a capsule's footer carries more) and flushes.
    pub fn finish_with<F: Serialize>(mut self, footer: &F) -> io::Result<String> {
        let hash = self.hash_hex();
        if let Some(mut sink) = self.sink.take() {
            serde_json::to_writer(&mut sink, footer)?;
            sink.write_all(b"\n")?;
            sink.flush()?;
        }
        Ok(hash)
    }
}

/// Writes `record` as its JSON step line, byte for byte what `serde_json` makes of
/// [`StepRecord`] (fields in declaration order, the outcome flattened, absent options left out),
/// without serde's buffering of a flattened struct: the trace hash is taken over every step of
/// every run, so this is on the simulator's hot path. The fast writer (`line.rs`) takes every
/// line whose names are plain and short; the reference writer below, the rest. `tests` pin the
/// equality with `serde_json`.
pub fn write_step_line(out: &mut Vec<u8>, record: &StepRecord<'_>) -> io::Result<()> {
    let mut names = LinePieces::default();
    let mut fast = Box::<LineBuf>::default();
    if line::write_fast(&mut fast, record, &mut names, 0) {
        out.extend_from_slice(fast.as_bytes());
        Ok(())
    } else {
        write_line(out, record, &mut names)
    }
}

/// Writes a name as a JSON string: plain ones from their block, the rest through
/// [`write_json_str`].
fn write_name(out: &mut Vec<u8>, names: &mut LinePieces, s: &'static str) -> io::Result<()> {
    match names.slot(s) {
        Some(slot) => {
            out.extend_from_slice(names.quoted(slot));
            Ok(())
        }
        None => write_json_str(out, s).map(|_| ()),
    }
}

/// Appends `v` in decimal, as `serde_json` writes it (`itoa`, which `serde_json` uses).
fn int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// The reference writer: any line, into a `Vec`.
fn write_line(
    out: &mut Vec<u8>,
    record: &StepRecord<'_>,
    names: &mut LinePieces,
) -> io::Result<()> {
    let o = record.outcome;
    out.extend_from_slice(b"{\"step\":");
    int(out, record.step);
    out.extend_from_slice(b",\"t_ns\":");
    int(out, record.t_ns);
    out.extend_from_slice(b",\"fire\":{\"due_ns\":");
    int(out, record.fire.due_ns);
    out.extend_from_slice(b",\"seq\":");
    int(out, record.fire.seq);
    // Actor names are `etcd`, `apiserver-N`, `client-N`, ...: nothing to escape.
    out.extend_from_slice(b"},\"actor\":\"");
    match o.actor {
        Actor::Apiserver(i) => {
            out.extend_from_slice(b"apiserver-");
            int(out, i);
        }
        Actor::Client(i) => {
            out.extend_from_slice(b"client-");
            int(out, i);
        }
        other => out.extend_from_slice(other.kind().as_bytes()),
    }
    out.extend_from_slice(b"\",\"action\":");
    write_name(out, names, o.action)?;
    out.extend_from_slice(b",\"what\":");
    write_name(out, names, o.what)?;
    if let Some(conn) = o.conn {
        out.extend_from_slice(b",\"conn\":");
        int(out, conn);
    }
    out.extend_from_slice(b",\"result\":");
    write_name(out, names, o.result)?;
    out.extend_from_slice(b",\"rev\":");
    int(out, o.rev);
    out.extend_from_slice(b",\"compact_rev\":");
    int(out, o.compact_rev);
    out.extend_from_slice(b",\"emitted\":");
    int(out, o.emitted);
    if let Some(v) = o.minute_relists {
        out.extend_from_slice(b",\"minute_relists\":");
        int(out, v);
    }
    if let Some(v) = o.minute_etcd_bytes {
        out.extend_from_slice(b",\"minute_etcd_bytes\":");
        int(out, v);
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string: plain ASCII names are copied as they are; anything else goes through
/// `serde_json` for its escaping. True when `s` was plain.
fn write_json_str(out: &mut Vec<u8>, s: &str) -> io::Result<bool> {
    if pieces::is_plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(true)
    } else {
        serde_json::to_writer(&mut *out, s).map_err(io::Error::other)?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers are written as `serde_json` writes them, at every length and sign.
    #[test]
    fn numbers_match_serde_json() {
        let mut signed: Vec<i64> = vec![0, -1, 1, 9, 10, -10, 99, 100, -101, i64::MIN, i64::MAX];
        let mut unsigned: Vec<u64> = vec![0, 1, 9, 10, 99, 100, 999, 1000, u64::MAX];
        let mut x: u64 = 1;
        for _ in 0..19 {
            unsigned.extend([x - 1, x, x + 1, x * 5 + 3]);
            signed.extend([x as i64, -(x as i64), x as i64 - 1, 1 - x as i64]);
            x *= 10;
        }
        for v in unsigned {
            let mut ours = b"x".to_vec();
            int(&mut ours, v);
            assert_eq!(&ours[1..], serde_json::to_vec(&v).unwrap(), "{v}");
        }
        for v in signed {
            let mut ours = Vec::new();
            int(&mut ours, v);
            assert_eq!(ours, serde_json::to_vec(&v).unwrap(), "{v}");
        }
        let mut ours = Vec::new();
        int(&mut ours, 7u32);
        assert_eq!(ours, b"7");
    }

    /// The copy-as-is shortcut writes exactly what `serde_json` would, for every ASCII character
    /// and for names mixing plain and escaped ones.
    #[test]
    fn json_strings_match_serde_json() {
        let mut samples: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
        samples.extend(
            [
                "",
                "watch.event",
                "a \"quoted\" name",
                "back\\slash",
                "tab\there",
                "ünïcode",
                "del\u{7f}",
            ]
            .map(String::from),
        );
        for s in &samples {
            let mut ours = Vec::new();
            write_json_str(&mut ours, s).unwrap();
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        // Through the table of plain names, twice (a miss, then a hit for the plain ones).
        let mut names = LinePieces::default();
        for s in [
            "watch.event",
            "a \"quoted\" name",
            "tab\there",
            "ok",
            "watch.event",
        ] {
            for _ in 0..2 {
                let mut ours = Vec::new();
                write_name(&mut ours, &mut names, s).unwrap();
                assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
            }
        }
    }
}
