//! A trace writer on a second thread: the simulation loop hands each step's record over in
//! batches, and a helper thread writes and hashes the lines in the same order.
//!
//! Issue 16: writing and hashing a step's line is about 7 % of a long `run` (`cluster-65k`),
//! and nothing in the model waits for it. The lines, the file and the hash are byte for byte those
//! of [`TraceWriter`] alone: the helper runs that same writer over the same records in the same
//! order, so the thread count changes only the wall time. The loop uses it only when the process
//! may use more than one core (`cli/run.rs`); sweeps, which already run a seed per core, keep
//! the writer in their loop.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::{StepRecord, TraceWriter};
use crate::kernel::{EventKey, Nanos};
use crate::proto::step::Outcome;

/// Records per batch (about 650 KB): one hand-over per 4,096 steps keeps the threads' wake-ups
/// (a system call each) rare; 512 cost a third more system time in `cluster-65k`.
const BATCH: usize = 4096;

/// Batches in flight at once (beyond the one being filled); the loop waits when the helper is
/// this far behind.
const IN_FLIGHT: usize = 4;

/// One step's record, owned, as it travels to the helper.
#[derive(Clone, Copy)]
struct OwnedRecord {
    step: u64,
    t_ns: Nanos,
    fire: EventKey,
    outcome: Outcome,
}

/// Where a run's step records go: written in the loop, or handed to a helper thread.
// One per run, built once and never moved in the loop: the inline writer's size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum StepSink {
    /// The loop writes each line itself.
    Inline(TraceWriter),
    /// A helper thread writes them.
    Threaded(Threaded),
}

impl StepSink {
    /// `writer` on a helper thread when `threaded`, else in the loop.
    pub fn new(writer: TraceWriter, threaded: bool) -> Self {
        if threaded {
            StepSink::Threaded(Threaded::spawn(writer))
        } else {
            StepSink::Inline(writer)
        }
    }

    /// Records one step (on a helper, an error surfaces within a batch of the step that met it).
    pub fn step(&mut self, record: &StepRecord<'_>) -> io::Result<()> {
        match self {
            StepSink::Inline(w) => w.step(record),
            StepSink::Threaded(t) => t.step(record),
        }
    }

    /// The writer after every recorded step is written: the hash covers them all.
    pub fn into_writer(self) -> io::Result<TraceWriter> {
        match self {
            StepSink::Inline(w) => Ok(w),
            StepSink::Threaded(t) => t.finish(),
        }
    }
}

/// The loop's side of a helper thread that writes the trace.
pub struct Threaded {
    batch: Vec<OwnedRecord>,
    to_helper: Option<SyncSender<Vec<OwnedRecord>>>,
    /// Emptied batches coming back, so the loop does not allocate one per batch.
    spare: Receiver<Vec<OwnedRecord>>,
    helper: Option<JoinHandle<io::Result<TraceWriter>>>,
}

impl Threaded {
    fn spawn(mut writer: TraceWriter) -> Self {
        let (to_helper, from_loop) = sync_channel::<Vec<OwnedRecord>>(IN_FLIGHT);
        let (to_loop, spare) = sync_channel::<Vec<OwnedRecord>>(IN_FLIGHT + 2);
        let helper = std::thread::Builder::new()
            .name("watchsim-trace".into())
            .spawn(move || {
                for mut batch in from_loop {
                    for r in &batch {
                        writer.step(&StepRecord {
                            step: r.step,
                            t_ns: r.t_ns,
                            fire: r.fire,
                            outcome: &r.outcome,
                        })?;
                    }
                    batch.clear();
                    // The loop may have finished and stopped taking spares.
                    let _ = to_loop.try_send(batch);
                }
                Ok(writer)
            })
            .expect("the trace helper thread starts");
        Threaded {
            batch: Vec::with_capacity(BATCH),
            to_helper: Some(to_helper),
            spare,
            helper: Some(helper),
        }
    }

    fn step(&mut self, record: &StepRecord<'_>) -> io::Result<()> {
        self.batch.push(OwnedRecord {
            step: record.step,
            t_ns: record.t_ns,
            fire: record.fire,
            outcome: *record.outcome,
        });
        if self.batch.len() == BATCH {
            self.send()?;
        }
        Ok(())
    }

    /// Hands the filled batch to the helper and takes an emptied one back (or a new one).
    fn send(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        let sent = self.to_helper.as_ref().map(|tx| tx.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            // The helper stopped: it met a write error, which joining it returns.
            _ => self.join().map(|_| ()),
        }
    }

    /// Waits for the helper to write everything sent so far and returns its writer or its error.
    fn join(&mut self) -> io::Result<TraceWriter> {
        self.to_helper = None;
        let Some(helper) = self.helper.take() else {
            return Err(io::Error::other("the trace helper thread already stopped"));
        };
        match helper.join() {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the trace helper thread panicked")),
        }
    }

    fn finish(mut self) -> io::Result<TraceWriter> {
        if !self.batch.is_empty() {
            let last = std::mem::take(&mut self.batch);
            if let Some(tx) = &self.to_helper {
                // A failed send means the helper stopped; joining returns its error.
                let _ = tx.send(last);
            }
        }
        self.join()
    }
}

impl Drop for Threaded {
    /// A run that stops early (a model error) still lets the helper end before the process does.
    fn drop(&mut self) {
        self.to_helper = None;
        if let Some(helper) = self.helper.take() {
            let _ = helper.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Actor;
    use std::sync::{Arc, Mutex};

    /// A sink a test can read back after the writer is gone.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink that fails once `limit` bytes are written.
    struct Failing {
        written: usize,
        limit: usize,
    }

    impl io::Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written += buf.len();
            if self.written > self.limit {
                return Err(io::Error::other("disk full"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn header() -> super::super::TraceHeader {
        super::super::TraceHeader {
            format: super::super::TRACE_FORMAT.to_string(),
            version: super::super::TRACE_VERSION,
            watchsim_version: "test".into(),
            scenario: String::new(),
            seed: 1,
            overrides: vec![],
        }
    }

    const NAMES: [&str; 4] = ["deliver", "timer", "a \"quoted\" one", "ok"];

    fn outcome(i: u64) -> Outcome {
        Outcome {
            actor: if i.is_multiple_of(3) {
                Actor::Etcd
            } else {
                Actor::Client(i as u32 % 7)
            },
            action: NAMES[(i % 2) as usize],
            what: NAMES[(i % 4) as usize],
            conn: (!i.is_multiple_of(5)).then_some(i * 3),
            result: NAMES[((i + 1) % 4) as usize],
            rev: i as i64,
            compact_rev: (i / 10) as i64,
            emitted: (i % 4) as u32,
            minute_relists: i.is_multiple_of(11).then_some(i),
            minute_etcd_bytes: None,
        }
    }

    /// Feeds `n` records to a sink and returns the trace text and hash.
    fn feed(n: u64, threaded: bool) -> (Vec<u8>, String) {
        let out = Shared::default();
        let writer = TraceWriter::to_sink(Box::new(out.clone()), &header()).unwrap();
        let mut sink = StepSink::new(writer, threaded);
        for i in 1..=n {
            let o = outcome(i);
            sink.step(&StepRecord {
                step: i,
                t_ns: i * 1000,
                fire: EventKey {
                    due_ns: i * 1000,
                    seq: i * 2,
                },
                outcome: &o,
            })
            .unwrap();
        }
        let hash = sink.into_writer().unwrap().finish(vec![]).unwrap();
        let text = out.0.lock().unwrap().clone();
        (text, hash)
    }

    /// The helper thread writes the same bytes and hash as the loop, for counts around the
    /// batch size (empty, partial, exact and several batches).
    #[test]
    fn threaded_writes_what_inline_writes() {
        for n in [0, 1, 511, 512, 513, 5 * 512 + 7] {
            let (inline_text, inline_hash) = feed(n, false);
            let (threaded_text, threaded_hash) = feed(n, true);
            assert_eq!(threaded_hash, inline_hash, "{n} steps");
            assert!(threaded_text == inline_text, "{n} steps: texts differ");
            let lines = inline_text.split(|&b| b == b'\n').count();
            assert_eq!(lines as u64, n + 3, "header, steps, footer, final newline");
        }
    }

    /// A write error on the helper reaches the loop, not a silent end.
    #[test]
    fn threaded_write_error_reaches_the_loop() {
        let writer = TraceWriter::to_sink(
            Box::new(Failing {
                written: 0,
                limit: 10_000,
            }),
            &header(),
        );
        // The header alone fits; the steps do not.
        let mut sink = StepSink::new(writer.unwrap(), true);
        let mut failed = None;
        for i in 1..=20 * BATCH as u64 {
            let o = outcome(i);
            let r = sink.step(&StepRecord {
                step: i,
                t_ns: i,
                fire: EventKey { due_ns: i, seq: i },
                outcome: &o,
            });
            if let Err(e) = r {
                failed = Some(e);
                break;
            }
        }
        let err = match failed {
            Some(e) => e,
            None => sink.into_writer().err().expect("the full disk is reported"),
        };
        assert_eq!(err.to_string(), "disk full");
    }
}
