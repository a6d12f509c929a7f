//! Placing a [`Problem`] in the user's input: the 1-based line of a dotted key path in the
//! original TOML text (from `toml_edit` spans), or the `--set` override that introduced it.

use std::ops::Range;

use toml_edit::{Document, Item, Value};

use super::errors::{Problem, ScenarioError};
use super::overrides::Override;

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Turns problems into [`ScenarioError`]s for one scenario text and its overrides.
pub(crate) struct Locator<'a> {
    origin: &'a str,
    text: &'a str,
    doc: Option<Document<&'a str>>,
    overrides: &'a [Override],
}

impl<'a> Locator<'a> {
    /// A locator for `text` (named `origin` in errors) with `overrides` applied on top.
    pub fn new(origin: &'a str, text: &'a str, overrides: &'a [Override]) -> Self {
        Locator {
            origin,
            text,
            doc: Document::parse(text).ok(),
            overrides,
        }
    }

    /// The error for `problem`: `--set` if an override introduced its key, else the file and
    /// the line of the key (or of its nearest ancestor present in the file).
    pub fn error(&self, problem: Problem) -> ScenarioError {
        let Some(key) = problem.key else {
            return ScenarioError {
                file: self.origin.to_string(),
                key: None,
                line: None,
                message: problem.message,
            };
        };
        let segments: Vec<&str> = key.split('.').collect();
        let (span, exact) = self.find(&segments);
        if let Some(o) = self.override_for(&segments, exact) {
            let mut message = format!("{} (from `--set {}`)", problem.message, o.raw);
            if problem.message.contains("expected a string") {
                message.push_str("; VALUE is read as TOML, so quote strings: --set KEY='\"text\"'");
            }
            return ScenarioError {
                file: "--set".to_string(),
                key: Some(key),
                line: None,
                message,
            };
        }
        ScenarioError {
            file: self.origin.to_string(),
            key: Some(key),
            line: span.map(|s| line_at(self.text, s.start)),
            message: problem.message,
        }
    }

    /// The last override that set this key or one of its ancestors; or, for a key absent from
    /// the file, the last override that created something under it.
    fn override_for(&self, segments: &[&str], in_file: bool) -> Option<&'a Override> {
        let covers = |outer: &[String], inner: &[&str]| {
            outer.len() <= inner.len() && outer.iter().zip(inner).all(|(a, b)| a == b)
        };
        let under = |o: &&Override| {
            o.path.len() >= segments.len() && segments.iter().zip(&o.path).all(|(a, b)| a == b)
        };
        let overrides = self.overrides;
        overrides
            .iter()
            .rev()
            .find(|o| covers(&o.path, segments))
            .or_else(|| {
                if in_file {
                    None
                } else {
                    overrides.iter().rev().find(under)
                }
            })
    }

    /// The span of the deepest segment of `segments` found in the file, and whether every
    /// segment was found.
    fn find(&self, segments: &[&str]) -> (Option<Range<usize>>, bool) {
        let Some(doc) = &self.doc else {
            return (None, false);
        };
        let mut node = Node::of_item(doc.as_item());
        let mut best = None;
        for segment in segments {
            let Some((span, next)) = node.child(segment) else {
                return (best, false);
            };
            best = span.or(best);
            node = next;
        }
        (best, true)
    }
}

/// A position in a `toml_edit` document while following a key path.
#[derive(Clone, Copy)]
enum Node<'d> {
    Table(&'d toml_edit::Table),
    Inline(&'d toml_edit::InlineTable),
    TableArray(&'d toml_edit::ArrayOfTables),
    Array(&'d toml_edit::Array),
    Leaf,
}

impl<'d> Node<'d> {
    fn of_item(item: &'d Item) -> Self {
        match item {
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::TableArray(a),
            Item::Value(v) => Node::of_value(v),
            Item::None => Node::Leaf,
        }
    }

    fn of_value(value: &'d Value) -> Self {
        match value {
            Value::InlineTable(t) => Node::Inline(t),
            Value::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }

    /// The child named `segment` (a key, or an index into an array) and the span that places
    /// it: the key for a table entry, the header for an `[[array]]` entry, the element itself
    /// for an inline array.
    fn child(self, segment: &str) -> Option<(Option<Range<usize>>, Node<'d>)> {
        match self {
            Node::Table(t) => {
                let (key, item) = t.get_key_value(segment)?;
                Some((key.span().or_else(|| item.span()), Node::of_item(item)))
            }
            Node::Inline(t) => {
                let (key, item) = t.get_key_value(segment)?;
                Some((key.span().or_else(|| item.span()), Node::of_item(item)))
            }
            Node::TableArray(a) => {
                let table = a.get(segment.parse().ok()?)?;
                Some((table.span(), Node::Table(table)))
            }
            Node::Array(a) => {
                let value = a.get(segment.parse().ok()?)?;
                Some((value.span(), Node::of_value(value)))
            }
            Node::Leaf => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, key: &str) -> Option<usize> {
        let loc = Locator::new("f.toml", text, &[]);
        loc.error(Problem::at(key, "x")).line
    }

    #[test]
    fn finds_keys_in_every_table_form() {
        let text = "name = \"a\"\n\
                    apiserver.count = 0\n\
                    [etcd]\n\
                    max_request_bytes = 0\n\
                    [[steps]]\n\
                    at = \"1s\"\n\
                    [[steps]]\n\
                    op = \"x\"\n\
                    [load_balancer]\n\
                    x = { a = 1,\n\
                    b = [1,\n\
                    2] }\n";
        assert_eq!(line(text, "name"), Some(1));
        assert_eq!(line(text, "apiserver.count"), Some(2));
        assert_eq!(line(text, "etcd.max_request_bytes"), Some(4));
        assert_eq!(line(text, "steps.0.at"), Some(6));
        assert_eq!(line(text, "steps.1"), Some(7));
        assert_eq!(
            line(text, "steps.1.at"),
            Some(7),
            "missing key: the table's header"
        );
        assert_eq!(line(text, "steps.1.op"), Some(8));
        assert_eq!(line(text, "load_balancer.x.b"), Some(11));
        assert_eq!(line(text, "load_balancer.x.b.1"), Some(12));
        assert_eq!(line(text, "nothing.here"), None);
    }

    #[test]
    fn line_at_counts_newlines_and_clamps() {
        assert_eq!(line_at("a\nb\nc", 0), 1);
        assert_eq!(line_at("a\nb\nc", 2), 2);
        assert_eq!(line_at("a\nb\nc", 99), 3);
    }
}
