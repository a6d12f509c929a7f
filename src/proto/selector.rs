//! Label and field selectors on LISTs and WATCHes (`apimachinery/pkg/labels/selector.go`,
//! `apimachinery/pkg/fields/selector.go`, `apiserver/pkg/storage/selection_predicate.go`).
//!
//! Objects carry no bodies in the model, so labels are interned: every distinct label map a
//! scenario's steps write gets a small id ([`LabelTable`], id 0 = no labels), assigned in step
//! order at load, so the same scenario always gives the same ids. A selector is compiled once
//! against that table into "which label-set ids match" plus the field terms, so matching on the
//! hot path is an index and a few key comparisons. The syntax (and what the scenario may write)
//! is `scenario/selectors.rs`: the field selectors a generic resource supports are
//! `metadata.name` and `metadata.namespace` (`storage.DefaultNamespaceScopedAttr`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::api::EventType;
use super::etcd::Key;
pub use super::selector_syntax::Field;
use super::selector_syntax::{FieldTerm, parse_field_selector, parse_label_selector};

/// Id of an interned label map: an index into the scenario's [`LabelTable`] (0 = no labels).
pub type LabelSetId = u32;

/// A label map, as `metadata.labels`.
pub type Labels = BTreeMap<String, String>;

/// Every distinct label map the scenario writes, in order of first appearance; index 0 is the
/// empty map (objects created by populations and workloads have no labels).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelTable {
    sets: Vec<Labels>,
}

impl LabelTable {
    /// A table from label maps in step order (duplicates share an id).
    pub fn new<'a>(maps: impl IntoIterator<Item = &'a Labels>) -> Self {
        let mut sets = vec![Labels::new()];
        for m in maps {
            if !sets.contains(m) {
                sets.push(m.clone());
            }
        }
        LabelTable { sets }
    }

    /// The id of `labels` (0 for a map the table does not hold, which only the empty map is).
    pub fn id(&self, labels: &Labels) -> LabelSetId {
        self.sets.iter().position(|s| s == labels).unwrap_or(0) as LabelSetId
    }

    /// The label map of `id`.
    pub fn labels(&self, id: LabelSetId) -> &Labels {
        &self.sets[id as usize]
    }

    /// Number of distinct label maps (the empty one included).
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Always false: the empty map is always there.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Compiled {
    /// The selectors as the request wrote them (`labelSelector`, `fieldSelector`).
    label_text: String,
    field_text: String,
    /// For every label-set id of the scenario, whether the label selector matches it.
    label_match: Vec<bool>,
    fields: Vec<FieldTerm>,
}

/// A request's label and field selectors (`storage.SelectionPredicate`), compiled against the
/// scenario's [`LabelTable`]. The default matches everything (`Predicate.Empty()`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector(Option<Arc<Compiled>>);

impl Selector {
    /// Everything (no selector).
    pub fn everything() -> Self {
        Selector(None)
    }

    /// Parses and compiles `labelSelector` and `fieldSelector`; an empty or absent text selects
    /// everything. Errors name the offending term.
    pub fn compile(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
        table: &LabelTable,
    ) -> Result<Self, String> {
        let label_text = label_selector.unwrap_or("").trim().to_string();
        let field_text = field_selector.unwrap_or("").trim().to_string();
        let requirements = parse_label_selector(&label_text)?;
        let fields = parse_field_selector(&field_text)?;
        if requirements.is_empty() && fields.is_empty() {
            return Ok(Selector(None));
        }
        let label_match = (0..table.len())
            .map(|id| {
                let labels = table.labels(id as LabelSetId);
                requirements.iter().all(|r| r.matches(labels))
            })
            .collect();
        Ok(Selector(Some(Arc::new(Compiled {
            label_text,
            field_text,
            label_match,
            fields,
        }))))
    }

    /// True when the selector filters nothing (`SelectionPredicate.Empty`).
    pub fn is_everything(&self) -> bool {
        self.0.is_none()
    }

    /// Whether an object with `key` and label set `labels` is selected
    /// (`SelectionPredicate.MatchesObjectAttributes`).
    pub fn matches(&self, key: &Key, labels: LabelSetId) -> bool {
        let Some(c) = &self.0 else {
            return true;
        };
        c.label_match.get(labels as usize).copied().unwrap_or(false)
            && c.fields.iter().all(|t| {
                let actual = match t.field {
                    Field::Name => name_of(key),
                    Field::Namespace => namespace_of(key),
                };
                (actual == t.value) == t.equal
            })
    }

    /// What a watcher with this selector sees of an event on `key` (`cache_watcher.go
    /// convertToWatchEvent`, `etcd3/watcher.go transform`): `labels` are the object's after the
    /// event (for a DELETED, the deleted object's), `prev_labels` those of the version it
    /// replaced (`None` for a creation). Both pass: the event as it is; only the new one: ADDED;
    /// only the old one: DELETED (of the old object, at the event's RV); neither: nothing.
    pub fn convert(
        &self,
        key: &Key,
        kind: EventType,
        labels: LabelSetId,
        prev_labels: Option<LabelSetId>,
    ) -> Option<EventType> {
        if self.is_everything() {
            return Some(kind);
        }
        if kind == EventType::Deleted {
            return self.matches(key, labels).then_some(EventType::Deleted);
        }
        let cur = self.matches(key, labels);
        let old = prev_labels.is_some_and(|p| self.matches(key, p));
        match (cur, old) {
            (true, true) => Some(EventType::Modified),
            (true, false) => Some(EventType::Added),
            (false, true) => Some(EventType::Deleted),
            (false, false) => None,
        }
    }

    /// The value an exact-match term requires of `field` (`fields.Selector.RequiresExactMatch`,
    /// used by the registry's `MatchesSingle` / `MatchesSingleNamespace` to narrow the key).
    pub fn requires_exact(&self, field: Field) -> Option<&str> {
        self.0.as_ref().and_then(|c| {
            c.fields
                .iter()
                .find(|t| t.field == field && t.equal)
                .map(|t| t.value.as_str())
        })
    }

    /// The selectors' texts, for traces: `(labelSelector, fieldSelector)`.
    pub fn texts(&self) -> (&str, &str) {
        match &self.0 {
            Some(c) => (&c.label_text, &c.field_text),
            None => ("", ""),
        }
    }
}

/// The name part of an object key `/registry/<resource>/<namespace>/<name>`.
fn name_of(key: &Key) -> &str {
    key.as_str().rsplit('/').next().unwrap_or("")
}

/// The namespace part of an object key.
fn namespace_of(key: &Key) -> &str {
    let mut parts = key.as_str().rsplit('/');
    parts.next();
    parts.next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> LabelTable {
        let a: Labels = [("app".into(), "a".into())].into();
        let b: Labels = [("app".into(), "b".into()), ("tier".into(), "x".into())].into();
        let n: Labels = [("rank".into(), "7".into())].into();
        LabelTable::new([&a, &b, &a, &n])
    }

    fn sel(l: &str, f: &str) -> Selector {
        Selector::compile(Some(l), Some(f), &table()).unwrap()
    }

    fn key(ns: &str, name: &str) -> Key {
        Key::new(&format!("/registry/pods/{ns}/{name}"))
    }

    #[test]
    fn the_table_interns_label_maps_in_order_with_the_empty_map_first() {
        let t = table();
        assert_eq!(t.len(), 4);
        assert_eq!(t.id(&Labels::new()), 0);
        assert_eq!(t.labels(1)["app"], "a");
        assert_eq!(t.labels(2)["tier"], "x");
    }

    #[test]
    fn label_operators_follow_labels_parse() {
        let k = key("default", "p");
        let cases = [
            ("app=a", [false, true, false, false]),
            ("app==b", [false, false, true, false]),
            ("app!=a", [true, false, true, true]),
            ("app in (a, b)", [false, true, true, false]),
            ("app notin (b)", [true, true, false, true]),
            ("tier", [false, false, true, false]),
            ("!tier", [true, true, false, true]),
            ("app,!tier", [false, true, false, false]),
            ("rank>5", [false, false, false, true]),
            ("rank<5", [false, false, false, false]),
        ];
        for (text, want) in cases {
            let s = sel(text, "");
            let got: Vec<bool> = (0..4).map(|id| s.matches(&k, id)).collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn field_terms_match_the_key_and_exact_terms_narrow_the_request() {
        let s = sel("", "metadata.namespace=ns1,metadata.name!=p");
        assert!(s.matches(&key("ns1", "q"), 0));
        assert!(!s.matches(&key("ns1", "p"), 0));
        assert!(!s.matches(&key("ns2", "q"), 0));
        assert_eq!(s.requires_exact(Field::Namespace), Some("ns1"));
        assert_eq!(s.requires_exact(Field::Name), None);
        assert_eq!(
            sel("", "metadata.name==p").requires_exact(Field::Name),
            Some("p")
        );
    }

    #[test]
    fn events_convert_as_convert_to_watch_event() {
        use EventType::*;
        let s = sel("app=a", "");
        let k = key("default", "p");
        // Label sets: 0 = none, 1 = app=a, 2 = app=b.
        assert_eq!(s.convert(&k, Added, 1, None), Some(Added));
        assert_eq!(s.convert(&k, Added, 2, None), None);
        assert_eq!(s.convert(&k, Modified, 1, Some(1)), Some(Modified));
        assert_eq!(s.convert(&k, Modified, 1, Some(2)), Some(Added));
        assert_eq!(s.convert(&k, Modified, 2, Some(1)), Some(Deleted));
        assert_eq!(s.convert(&k, Modified, 2, Some(0)), None);
        assert_eq!(s.convert(&k, Deleted, 1, Some(1)), Some(Deleted));
        assert_eq!(s.convert(&k, Deleted, 2, Some(2)), None);
        assert_eq!(
            Selector::everything().convert(&k, Modified, 2, Some(1)),
            Some(Modified)
        );
    }

    #[test]
    fn empty_selectors_select_everything() {
        assert!(sel("", "").is_everything());
        assert!(sel(" ", "").is_everything());
        assert!(!sel("app", "").is_everything());
    }
}
