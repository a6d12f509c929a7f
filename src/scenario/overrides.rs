//! `--set KEY=VALUE` overrides (SPEC §1), applied to the parsed TOML table before it is
//! deserialized.
//!
//! - KEY is a dotted path of bare keys: `apiserver.watch_cache.capacity`, `clients.0.list_rv`.
//!   A segment that meets an array is an index, which must exist. Missing intermediate tables
//!   are created (an unknown key is then reported by deserialization, naming `--set`).
//! - VALUE is read as one TOML value (`1000`, `true`, `"0"`, `""`, `[1, 2]`, `{ a = 1 }`). If it
//!   is not one (e.g. `5s`, `round-robin`, or nothing at all), it is taken as a string as written,
//!   so `--set duration=5s` works without quotes. To set a string that looks like a number,
//!   quote it: `--set clients.0.list_rv='"0"'`.

use super::errors::ScenarioError;

/// One parsed `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Override {
    /// The argument as given, for messages.
    pub raw: String,
    /// KEY split at dots.
    pub path: Vec<String>,
    /// VALUE as a TOML value.
    pub value: toml::Value,
}

fn set_error(key: Option<String>, message: String) -> ScenarioError {
    ScenarioError {
        file: "--set".to_string(),
        key,
        line: None,
        message,
    }
}

/// Parses `KEY=VALUE` (split at the first `=`).
pub(crate) fn parse(raw: &str) -> Result<Override, ScenarioError> {
    let Some((key, value)) = raw.split_once('=') else {
        return Err(set_error(None, format!("expected KEY=VALUE, got `{raw}`")));
    };
    let key = key.trim();
    let path: Vec<String> = key.split('.').map(|s| s.trim().to_string()).collect();
    if path.iter().any(String::is_empty) {
        return Err(set_error(
            Some(key.to_string()),
            format!("KEY in `{raw}` must be a dotted path like `apiserver.watch_cache.capacity`"),
        ));
    }
    Ok(Override {
        raw: raw.to_string(),
        path,
        value: parse_value(value),
    })
}

/// VALUE as one TOML value, or else as a plain string.
pub(crate) fn parse_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}\n")) {
        Ok(mut table) if table.len() == 1 => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        _ => toml::Value::String(text.to_string()),
    }
}

/// Sets the override's key in `root`.
pub(crate) fn apply(root: &mut toml::Table, o: &Override) -> Result<(), ScenarioError> {
    let mut whole = toml::Value::Table(std::mem::take(root));
    let result = set(&mut whole, o);
    if let toml::Value::Table(table) = whole {
        *root = table;
    }
    result
}

/// Walks (creating tables as needed) to the override's key under `slot` and sets it.
fn set(mut slot: &mut toml::Value, o: &Override) -> Result<(), ScenarioError> {
    for (depth, segment) in o.path.iter().enumerate() {
        let fail = |message: String| {
            set_error(
                Some(o.path[..=depth].join(".")),
                format!("{message} (in `--set {}`)", o.raw),
            )
        };
        let parent = o.path[..depth].join(".");
        slot = match slot {
            toml::Value::Table(table) => {
                let next_is_index = o
                    .path
                    .get(depth + 1)
                    .is_some_and(|s| s.parse::<usize>().is_ok());
                if next_is_index && !table.contains_key(segment) {
                    return Err(fail(format!(
                        "`{}` is not in the scenario, so it has no entry `{}` to set",
                        o.path[..=depth].join("."),
                        o.path[depth + 1]
                    )));
                }
                table
                    .entry(segment.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(array) => {
                let len = array.len();
                match segment.parse::<usize>().ok().and_then(|i| array.get_mut(i)) {
                    Some(element) => element,
                    None => {
                        return Err(fail(format!(
                            "`{parent}` has {len} entries; index `{segment}` does not exist"
                        )));
                    }
                }
            }
            other => {
                return Err(fail(format!(
                    "`{parent}` holds a value of type {}, not a table",
                    other.type_str()
                )));
            }
        };
    }
    *slot = o.value.clone();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).expect("test TOML parses")
    }

    #[test]
    fn values_parse_as_toml_or_fall_back_to_strings() {
        assert_eq!(parse_value("1000"), toml::Value::Integer(1000));
        assert_eq!(parse_value("0.5"), toml::Value::Float(0.5));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("\"0\""), toml::Value::String("0".into()));
        assert_eq!(parse_value("5s"), toml::Value::String("5s".into()));
        assert_eq!(
            parse_value("round-robin"),
            toml::Value::String("round-robin".into())
        );
        assert_eq!(parse_value(""), toml::Value::String(String::new()));
        assert_eq!(
            parse_value("1\nx = 2"),
            toml::Value::String("1\nx = 2".into())
        );
    }

    #[test]
    fn sets_nested_creates_tables_and_indexes_arrays() {
        let mut t = table("[a]\nb = 1\n[[c]]\nd = 1\n");
        for raw in ["a.b=2", "x.y.z=3", "c.0.d=4", "top=5"] {
            apply(&mut t, &parse(raw).expect("parses")).expect("applies");
        }
        assert_eq!(
            t,
            table("top = 5\n[a]\nb = 2\n[x.y]\nz = 3\n[[c]]\nd = 4\n")
        );
    }

    #[test]
    fn refuses_missing_index_scalar_parent_and_malformed() {
        let mut t = table("a = 1\n[[c]]\nd = 1\n");
        let e = apply(&mut t, &parse("c.1.d=2").expect("parses")).expect_err("no index 1");
        assert_eq!((e.file.as_str(), e.key.as_deref()), ("--set", Some("c.1")));
        let e = apply(&mut t, &parse("a.b=2").expect("parses")).expect_err("a is scalar");
        assert_eq!(e.key.as_deref(), Some("a.b"));
        let e = apply(&mut t, &parse("x.0.d=2").expect("parses")).expect_err("no array x");
        assert_eq!(e.key.as_deref(), Some("x"));
        assert!(parse("novalue").is_err());
        assert!(parse("a..b=1").is_err());
        assert!(parse("=1").is_err());
    }
}
