//! The page itself: `page.html` with the stylesheet (`timeline.css`), the script
//! (`timeline.js`) and the recorded steps as JSON put in place. Text from the run reaches the
//! page only escaped: HTML-escaped in the heading, and in the JSON blob with `<`, `>`, `&` and
//! the two JavaScript line separators written as `\u` escapes, so no value can end the
//! `<script>` element it sits in.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::{Kind, PageRecorder};
use super::{Marked, PageMeta};
use crate::world::Actor;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("timeline.css");
const SCRIPT: &str = include_str!("timeline.js");

/// The JSON blob the script draws from.
#[derive(Serialize)]
struct Data<'a> {
    title: &'a str,
    source: &'a str,
    scenario: &'a str,
    seed: u64,
    watchsim_version: &'static str,
    lanes: Vec<LaneData>,
    /// `[lane, state]`: each lane's state before its first change.
    initial: Vec<(usize, &'a str)>,
    steps: Vec<StepData<'a>>,
    violations: &'a [Marked],
}

#[derive(Serialize)]
struct LaneData {
    /// The actor as the trace names it: `etcd`, `apiserver-1`, `client-0`.
    name: String,
    /// A client's instance name (`controller-0`), else empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    instance: String,
    /// `name`, and the instance name: `client-0 · controller-0`.
    title: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct StepData<'a> {
    n: u64,
    /// Virtual time after the step, seconds with 6 decimals.
    t: String,
    lane: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    to: Vec<usize>,
    kind: Kind,
    action: &'static str,
    what: &'static str,
    result: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    detail: &'a str,
    rev: i64,
    crev: i64,
    /// `[lane, state]` for each lane whose state changed in this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    state: Vec<(usize, &'a str)>,
}

/// The page of `rec`'s steps: one self-contained HTML document, the same bytes for the same
/// steps, meta and violations.
pub fn render(rec: &PageRecorder, meta: &PageMeta, violations: &[Marked]) -> String {
    let lanes = rec.lanes();
    let index: BTreeMap<Actor, usize> = lanes.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let data = Data {
        title: &meta.title,
        source: &meta.source,
        scenario: &meta.scenario,
        seed: meta.seed,
        watchsim_version: crate::VERSION,
        lanes: lanes
            .iter()
            .map(|a| {
                let instance = rec.instances.get(a).cloned().unwrap_or_default();
                LaneData {
                    name: a.to_string(),
                    title: match instance.as_str() {
                        "" => a.to_string(),
                        i => format!("{a} · {i}"),
                    },
                    instance,
                    kind: a.kind(),
                }
            })
            .collect(),
        initial: rec
            .initial
            .iter()
            .filter_map(|(a, s)| Some((*index.get(a)?, s.as_str())))
            .collect(),
        steps: rec.steps.iter().map(|s| step_data(s, &index)).collect(),
        violations,
    };
    let json = serde_json::to_string(&data).expect("the page data always serialises");
    fill(TEMPLATE, |name| match name {
        "TITLE" => html_escape(&format!("watchsim timeline: {}", meta.title)),
        "HEADING" => html_escape(&meta.title),
        "SUBTITLE" => html_escape(&subtitle(rec, meta, lanes.len())),
        "VERDICT_CLASS" => if violations.is_empty() { "good" } else { "bad" }.to_string(),
        "VERDICT" => html_escape(&verdict(violations, rec)),
        "STYLE" => STYLE.to_string(),
        "DATA" => script_json(&json),
        "SCRIPT" => SCRIPT.to_string(),
        other => panic!("page.html names an unknown slot {other}"),
    })
}

fn step_data<'a>(s: &'a super::StepRecord, index: &BTreeMap<Actor, usize>) -> StepData<'a> {
    let lane_of = |a: &Actor| index.get(a).copied();
    StepData {
        n: s.n,
        t: format!("{:.6}", s.t_ns as f64 / 1e9),
        lane: lane_of(&s.lane).unwrap_or(0),
        from: s.from.as_ref().and_then(lane_of),
        to: s.to.iter().filter_map(lane_of).collect(),
        kind: s.kind,
        action: s.action,
        what: s.what,
        result: s.result,
        detail: &s.detail,
        rev: s.rev,
        crev: s.compact_rev,
        state: s
            .state
            .iter()
            .filter_map(|(a, text)| Some((lane_of(a)?, text.as_str())))
            .collect(),
    }
}

fn subtitle(rec: &PageRecorder, meta: &PageMeta, lanes: usize) -> String {
    let faults = rec.steps.iter().filter(|s| s.kind == Kind::Fault).count();
    format!(
        "{} · scenario {} · seed {} · {} steps · {} lanes · {} fault(s) · watchsim {}",
        meta.source,
        meta.scenario,
        meta.seed,
        rec.steps.len(),
        lanes,
        faults,
        crate::VERSION
    )
}

fn verdict(violations: &[Marked], rec: &PageRecorder) -> String {
    let Some(first) = violations.iter().min_by_key(|v| v.step) else {
        return "No violation in these steps.".to_string();
    };
    let t = rec
        .steps
        .get((first.step as usize).saturating_sub(1))
        .map(|s| format!(" (t={:.6}s)", s.t_ns as f64 / 1e9))
        .unwrap_or_default();
    let more = match violations.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    format!(
        "Violation: {} at step {}{t}: {}{more}",
        first.name, first.step, first.message
    )
}

/// `template` with every `{{NAME}}` replaced by `slot(NAME)`, in one pass (a replacement is
/// never scanned again, so text from the run cannot name a slot).
fn fill(template: &str, slot: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + STYLE.len() + SCRIPT.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&slot(&rest[open + 2..open + len]));
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
}

/// `s` safe as HTML text or a quoted attribute value.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON text safe inside a `<script>` element: `<`, `>` and `&` as `\u` escapes (so no
/// `</script>` or `<!--` can appear), and U+2028 / U+2029 too. Only valid inside JSON strings,
/// where serde_json puts every such character.
pub fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closing_script_tag_in_the_data_cannot_end_the_script_element() {
        let json = serde_json::to_string("</script><script>alert(1)</script> & \u{2028}").unwrap();
        let safe = script_json(&json);
        assert!(!safe.contains('<') && !safe.contains('>') && !safe.contains('&'));
        let back: String = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, "</script><script>alert(1)</script> & \u{2028}");
    }

    #[test]
    fn heading_text_is_escaped() {
        assert_eq!(
            html_escape(r#"<b a="1">'&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn slots_are_filled_once_and_replacements_are_not_rescanned() {
        let out = fill("a {{X}} b {{Y}} c", |n| match n {
            "X" => "{{Y}}".to_string(),
            _ => "y".to_string(),
        });
        assert_eq!(out, "a {{Y}} b y c");
    }
}
