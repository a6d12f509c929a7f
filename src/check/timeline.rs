//! `watchsim replay --timeline`: one fixed-column line per step: time, actor, what it did and
//! its result, etcd's revision and compact revision, each apiserver cache's window (oldest
//! watchable RV .. cache RV / capacity), and the RV of the client the step concerns. A line
//! starting with `!!` marks the step at which an invariant's first violation was detected.

use std::io::{self, Write};

use super::Inv;
use super::view::StepView;
use crate::apiserver::{ApiRequest, ApiResponse, ApiWatchEvent};
use crate::etcd::WatchResponseKind;
use crate::world::{Actor, Msg, Outcome, Pending, Timer, World};

/// The fixed-column timeline as a [`StepView`]: the header at the start, one row per step.
pub struct TextTimeline<'a> {
    out: &'a mut dyn Write,
    detail: String,
}

impl<'a> TextTimeline<'a> {
    /// A timeline written to `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        TextTimeline {
            out,
            detail: String::new(),
        }
    }
}

impl StepView for TextTimeline<'_> {
    fn start(&mut self, world: &World) -> io::Result<()> {
        write_header(self.out, world)
    }

    fn before(&mut self, pending: Option<&Pending>, world: &World) {
        self.detail = describe(pending, world);
    }

    fn after(&mut self, step: u64, world: &World, outcome: &Outcome) -> io::Result<()> {
        write_row(self.out, step, world, outcome, &self.detail)
    }
}

const CACHE_COL: usize = 22;

/// The column titles.
pub fn write_header(out: &mut dyn Write, world: &World) -> io::Result<()> {
    let mut caches = String::new();
    for a in world.apiservers().iter() {
        for (r, res) in world.scenario().resources.iter().enumerate() {
            let _ = r;
            let title = format!("a{}/{} window", a.index, res.name);
            caches += &format!(" {title:<CACHE_COL$}");
        }
    }
    writeln!(
        out,
        "{:>5} {:>11}  {:<12} {:<34} {:<22} {:>6} {:>6}{caches}  client / detail",
        "step", "time(s)", "actor", "action", "result", "rev", "crev"
    )?;
    writeln!(
        out,
        "      (rev / crev: etcd's revision and compact revision; a window is oldest watchable RV .. cache RV / capacity)"
    )
}

fn rv_text(rv: crate::apiserver::Rv) -> String {
    super::invariants::time_travel::rv_text(rv)
}

/// A few words on what a pending event carries (looked up before it is applied).
pub fn describe(p: Option<&Pending>, world: &World) -> String {
    let s = world.scenario();
    match p {
        Some(Pending::Timer(Timer::Fault(i))) => s
            .faults
            .at
            .get(*i as usize)
            .map(|f| {
                let mut d = format!("fault {:?}", f.kind);
                if let Some(x) = f.server {
                    d += &format!(" server={x}");
                }
                if let Some(c) = &f.client {
                    d += &format!(" client={c}");
                }
                if let Some(x) = f.for_ {
                    d += &format!(" for={x}");
                }
                d
            })
            .unwrap_or_default(),
        Some(Pending::Timer(Timer::ScriptStep(i))) => s
            .steps
            .get(*i as usize)
            .map(|st| format!("step {i}: {} at {}", st.op_name(), st.at()))
            .unwrap_or_default(),
        Some(Pending::Deliver { msg, .. }) => match msg {
            Msg::Api { req, .. } => match &**req {
                ApiRequest::List {
                    rv,
                    limit,
                    selector,
                    ..
                } => format!(
                    "LIST rv=\"{}\" limit={limit}{}",
                    rv_text(*rv),
                    selector_text(selector)
                ),
                ApiRequest::Watch { rv, selector, .. } => {
                    format!("WATCH rv=\"{}\"{}", rv_text(*rv), selector_text(selector))
                }
                _ => String::new(),
            },
            Msg::ApiReply { resp, .. } => match &**resp {
                ApiResponse::List(l) => format!(
                    "list rv={} items={} from {:?}",
                    l.rv,
                    l.items.len(),
                    l.served_from
                ),
                ApiResponse::Error(st) => format!("error {} {}", st.code, st.message),
                _ => String::new(),
            },
            Msg::ApiWatch(ApiWatchEvent::Object { kind, key, rv, .. }) => {
                format!("{kind:?} {key} rv={rv}")
            }
            Msg::ApiWatch(ApiWatchEvent::Bookmark { rv, .. }) => format!("BOOKMARK rv={rv}"),
            Msg::ApiWatch(ApiWatchEvent::Error(st)) => format!("ERROR {} {}", st.code, st.message),
            Msg::ApiWatch(ApiWatchEvent::Closed) => "CLOSED".into(),
            Msg::ApiWatchBatch(events) => format!("{} initial events", events.events().len()),
            Msg::WatchReply(r) => match &r.kind {
                WatchResponseKind::Events(evs) => format!(
                    "{} event(s), revisions {}..{}",
                    evs.len(),
                    evs.first().map_or(0, |e| e.kv.mod_revision),
                    evs.last().map_or(0, |e| e.kv.mod_revision)
                ),
                WatchResponseKind::Progress => format!("progress rev={}", r.header_revision),
                WatchResponseKind::Canceled { compact_revision } => {
                    format!("canceled compact_revision={compact_revision}")
                }
                WatchResponseKind::Created => "created".into(),
            },
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// Apiserver `a`'s cache of resource `r` in a few characters: `down`, `off`, `not-ready`, or
/// its window `oldest watchable RV..cache RV/capacity`.
pub fn window_text(a: &crate::apiserver::Apiserver, r: usize) -> String {
    if a.is_down() {
        return "down".to_string();
    }
    match a.cacher(r as u32) {
        None => "off".to_string(),
        Some(c) if !c.ready => "not-ready".to_string(),
        Some(c) => {
            let oldest = c
                .cache
                .oldest_rv()
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into());
            format!(
                "{oldest}..{}/{}",
                c.cache.resource_version(),
                c.cache.capacity()
            )
        }
    }
}

fn cache_cells(world: &World) -> String {
    let mut s = String::new();
    for a in world.apiservers().iter() {
        for r in 0..world.scenario().resources.len() {
            let cell = window_text(a, r);
            s += &format!(" {cell:<CACHE_COL$}");
        }
    }
    s
}

/// One step's line (plus a `!!` line per invariant first violated at this step).
pub fn write_row(
    out: &mut dyn Write,
    step: u64,
    world: &World,
    o: &Outcome,
    detail: &str,
) -> io::Result<()> {
    let client = match o.actor {
        Actor::Client(i) => world
            .clients()
            .get(i as usize)
            .map(|c| {
                format!(
                    "{} rv={}",
                    crate::client::instance_name(world.scenario(), i),
                    c.last_sync_rv
                )
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    let client = match (client.is_empty(), detail.is_empty()) {
        (_, true) => client,
        (true, false) => detail.to_string(),
        (false, false) => format!("{client}  {detail}"),
    };
    let action = format!("{} {}", o.action, o.what);
    writeln!(
        out,
        "{step:>5} {:>11.6}  {:<12} {:<34} {:<22} {:>6} {:>6}{}  {client}",
        world.now() as f64 / 1e9,
        o.actor.to_string(),
        action,
        o.result,
        o.rev,
        o.compact_rev,
        cache_cells(world)
    )?;
    let ck = &world.observations().checker;
    for inv in Inv::ALL {
        if let Some(v) = &ck.tally(inv).first
            && v.step == step
        {
            writeln!(out, "   !! {}: {}", inv.name(), v.message)?;
        }
    }
    Ok(())
}

/// ` labelSelector="…" fieldSelector="…"` for the selectors a request has (nothing for none).
fn selector_text(selector: &crate::apiserver::selector::Selector) -> String {
    let (labels, fields) = selector.texts();
    let mut out = String::new();
    if !labels.is_empty() {
        out.push_str(&format!(" labelSelector=\"{labels}\""));
    }
    if !fields.is_empty() {
        out.push_str(&format!(" fieldSelector=\"{fields}\""));
    }
    out
}
