//! The selector syntax of the scenario language: `label_selector` as `labels.Parse`
//! (`apimachinery/pkg/labels/selector.go`) and `field_selector` as `fields.ParseSelector`
//! (`apimachinery/pkg/fields/selector.go`), with the label key and value rules of
//! `apimachinery/pkg/util/validation` for `labels` on writes. What a selector selects is the
//! apiserver's business (`apiserver/selector.rs`); this module only parses and validates, so a
//! bad selector is refused when the scenario loads.

use std::collections::BTreeMap;

/// A label requirement's operator (`selection.Operator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelOp {
    /// `k=v`, `k==v`, `k in (v…)`.
    In(Vec<String>),
    /// `k!=v`, `k notin (v…)`: true when the label is absent too.
    NotIn(Vec<String>),
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
    /// `k>n`: the label holds an integer greater than n.
    Gt(i64),
    /// `k<n`.
    Lt(i64),
}

/// One label requirement (`labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// The operator and its values.
    pub op: LabelOp,
}

impl LabelRequirement {
    /// `Requirement.Matches`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match &self.op {
            LabelOp::In(vs) => value.is_some_and(|v| vs.contains(v)),
            LabelOp::NotIn(vs) => value.is_none_or(|v| !vs.contains(v)),
            LabelOp::Exists => value.is_some(),
            LabelOp::DoesNotExist => value.is_none(),
            LabelOp::Gt(n) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            LabelOp::Lt(n) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        }
    }
}

/// The object fields a field selector can name on a generic namespaced resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `metadata.name`.
    Name,
    /// `metadata.namespace`.
    Namespace,
}

/// One field term (`fields.hasTerm` / `fields.notHasTerm`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldTerm {
    /// The field.
    pub field: Field,
    /// The value compared with.
    pub value: String,
    /// `=`/`==` (true) or `!=` (false).
    pub equal: bool,
}

/// A valid label key: an optional DNS-1123 subdomain prefix (≤ 253) and `/`, then a name of
/// ≤ 63 alphanumerics, `-`, `_`, `.`, beginning and ending alphanumeric
/// (`validation.IsQualifiedName`).
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "invalid label key \"{key}\": prefix part must be a lowercase DNS-1123 subdomain"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 || !is_label_word(name) {
        return Err(format!(
            "invalid label key \"{key}\": name part must be 1-63 characters, alphanumeric, '-', \
             '_' or '.', beginning and ending with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A valid label value: empty, or ≤ 63 characters as a label key's name part
/// (`validation.IsValidLabelValue`).
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && is_label_word(value)) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value \"{value}\": must be at most 63 characters, alphanumeric, '-', \
             '_' or '.', beginning and ending with an alphanumeric character"
        ))
    }
}

fn is_label_word(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(alnum)
        && s.chars().next_back().is_some_and(alnum)
}

/// Splits `text` at commas outside parentheses.
fn split_terms(text: &str) -> Result<Vec<&str>, String> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced ')' in \"{text}\""));
                }
            }
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '(' in \"{text}\""));
    }
    out.push(&text[start..]);
    Ok(out)
}

/// `labels.Parse`: comma-separated requirements `k`, `!k`, `k=v`, `k==v`, `k!=v`,
/// `k in (v,…)`, `k notin (v,…)`, `k>n`, `k<n`.
pub fn parse_label_selector(text: &str) -> Result<Vec<LabelRequirement>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    split_terms(text)?
        .into_iter()
        .map(|t| parse_label_term(t.trim()))
        .collect()
}

fn parse_label_term(term: &str) -> Result<LabelRequirement, String> {
    let req = |key: &str, op: LabelOp| -> Result<LabelRequirement, String> {
        let key = key.trim();
        validate_label_key(key)?;
        if let LabelOp::In(vs) | LabelOp::NotIn(vs) = &op {
            for v in vs {
                validate_label_value(v)?;
            }
        }
        Ok(LabelRequirement {
            key: key.to_string(),
            op,
        })
    };
    if term.is_empty() {
        return Err("empty requirement in label selector".into());
    }
    if let Some(key) = term.strip_prefix('!') {
        return req(key, LabelOp::DoesNotExist);
    }
    if let Some((k, v)) = term.split_once("!=") {
        return req(k, LabelOp::NotIn(vec![v.trim().to_string()]));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return req(k, LabelOp::In(vec![v.trim().to_string()]));
    }
    for (sym, gt) in [('>', true), ('<', false)] {
        if let Some((k, v)) = term.split_once(sym) {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("\"{term}\": the value of '{sym}' must be an integer"))?;
            return req(k, if gt { LabelOp::Gt(n) } else { LabelOp::Lt(n) });
        }
    }
    let mut words = term.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or("");
    let rest = words.next().unwrap_or("").trim();
    if rest.is_empty() {
        return req(key, LabelOp::Exists);
    }
    let (notin, set) = if let Some(s) = rest.strip_prefix("notin") {
        (true, s)
    } else if let Some(s) = rest.strip_prefix("in") {
        (false, s)
    } else {
        return Err(format!(
            "\"{term}\": expected one of =, ==, !=, in, notin, >, < after the key"
        ));
    };
    let set = set.trim();
    let inner = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("\"{term}\": a set must be written \"(v1,v2)\""))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().all(|v| v.is_empty()) {
        return Err(format!("\"{term}\": the set must hold at least one value"));
    }
    req(
        key,
        if notin {
            LabelOp::NotIn(values)
        } else {
            LabelOp::In(values)
        },
    )
}

/// `fields.ParseSelector`: comma-separated `f=v`, `f==v`, `f!=v` (`\,`, `\=`, `\\` escape),
/// for the fields a generic resource supports.
pub fn parse_field_selector(text: &str) -> Result<Vec<FieldTerm>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut raw = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push('\\');
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            ',' => raw.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    raw.push(current);
    for t in raw {
        let (field, value, equal) = if let Some((f, v)) = split_unescaped(&t, "!=") {
            (f, v, false)
        } else if let Some((f, v)) = split_unescaped(&t, "==") {
            (f, v, true)
        } else if let Some((f, v)) = split_unescaped(&t, "=") {
            (f, v, true)
        } else {
            return Err(format!(
                "invalid field selector term \"{t}\": expected f=v, f==v or f!=v"
            ));
        };
        let field = match field.trim() {
            "metadata.name" => Field::Name,
            "metadata.namespace" => Field::Namespace,
            other => {
                return Err(format!(
                    "field label not supported: {other} (a generic resource supports \
                     metadata.name and metadata.namespace)"
                ));
            }
        };
        terms.push(FieldTerm {
            field,
            value: unescape(value.trim()),
            equal,
        });
    }
    Ok(terms)
}

/// Splits at the first `op` not preceded by a backslash.
fn split_unescaped<'a>(s: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let mut from = 0;
    while let Some(i) = s[from..].find(op) {
        let at = from + i;
        let escaped = s[..at].chars().rev().take_while(|c| *c == '\\').count() % 2 == 1;
        if !escaped && !(op == "=" && (s[..at].ends_with('!') || s[at + 1..].starts_with('='))) {
            return Some((&s[..at], &s[at + op.len()..]));
        }
        from = at + op.len();
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_selectors_are_refused_with_the_term() {
        for (l, want) in [
            ("app in a", "set must be written"),
            ("app=a,", "empty requirement"),
            ("-app=a", "invalid label key"),
            ("app=a b", "invalid label value"),
            ("app in (a", "unbalanced"),
            ("rank>x", "must be an integer"),
        ] {
            let e = parse_label_selector(l).unwrap_err();
            assert!(e.contains(want), "{l:?}: {e}");
        }
        for (f, want) in [
            (
                "spec.nodeName=n1",
                "field label not supported: spec.nodeName",
            ),
            ("metadata.name", "invalid field selector term"),
        ] {
            let e = parse_field_selector(f).unwrap_err();
            assert!(e.contains(want), "{f:?}: {e}");
        }
    }

    #[test]
    fn terms_parse_into_operators() {
        let r = parse_label_selector("app in (a, b), !tier,x!=y").unwrap();
        assert_eq!(r[0].op, LabelOp::In(vec!["a".into(), "b".into()]));
        assert_eq!(r[1].op, LabelOp::DoesNotExist);
        assert_eq!(r[2].op, LabelOp::NotIn(vec!["y".into()]));
        let f = parse_field_selector(r"metadata.name!=a\,b,metadata.namespace==ns").unwrap();
        assert_eq!(f[0].value, "a,b");
        assert!(!f[0].equal);
        assert_eq!(f[1].field, Field::Namespace);
        assert!(f[1].equal);
    }

    #[test]
    fn label_keys_and_values_follow_the_validation_rules() {
        assert!(validate_label_key("example.com/app").is_ok());
        assert!(validate_label_key("Example.com/app").is_err());
        assert!(validate_label_key(&"a".repeat(64)).is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("a-b_c.d").is_ok());
        assert!(validate_label_value("-a").is_err());
    }
}
