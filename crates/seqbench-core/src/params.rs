//! Parameter maps as written in a suite: every scalar may be a list, which means "sweep".
//! A map is expanded into the cartesian product of its lists, then each combination is
//! deserialized into the typed config of a model, task or training setup (`deny_unknown_fields`),
//! so a misspelt key is an error rather than a silently ignored setting.
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// Keys → values as written; a `Value::Sequence` is a sweep.
pub type ParamMap = BTreeMap<String, Value>;

/// A problem with one key of a parameter map: (key, message). The caller adds file and location.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    pub key: String,
    pub message: String,
}

impl ParamError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError { key: key.into(), message: message.into() }
    }
}

/// The values a key takes: one for a scalar, each element for a list.
pub fn sweep_values(key: &str, value: &Value) -> Result<Vec<Value>, ParamError> {
    match value {
        Value::Sequence(items) if items.is_empty() => {
            Err(ParamError::new(key, "empty list: a sweep needs at least one value"))
        }
        Value::Sequence(items) => {
            if items.iter().any(|v| matches!(v, Value::Sequence(_) | Value::Mapping(_))) {
                return Err(ParamError::new(key, "a sweep is a list of scalars; found a nested list or map"));
            }
            Ok(items.clone())
        }
        Value::Mapping(_) => Err(ParamError::new(key, "expected a scalar or a list of scalars, found a map")),
        Value::Tagged(_) => Err(ParamError::new(key, "YAML tags are not supported here")),
        scalar => Ok(vec![scalar.clone()]),
    }
}

/// Cartesian product of all sweeps in `map`, in key order (so the expansion is deterministic).
pub fn expand(map: &ParamMap) -> Result<Vec<ParamMap>, ParamError> {
    let mut combos: Vec<ParamMap> = vec![ParamMap::new()];
    for (key, value) in map {
        let values = sweep_values(key, value)?;
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for v in &values {
                let mut c = combo.clone();
                c.insert(key.clone(), v.clone());
                next.push(c);
            }
        }
        combos = next;
    }
    Ok(combos)
}

/// Number of combinations `expand` would produce, without building them.
pub fn count_combinations(map: &ParamMap) -> usize {
    map.values()
        .map(|v| match v {
            Value::Sequence(items) => items.len(),
            _ => 1,
        })
        .product()
}

/// Keys whose value is a list of more than one element.
pub fn swept_keys(map: &ParamMap) -> Vec<String> {
    map.iter().filter(|(_, v)| matches!(v, Value::Sequence(items) if items.len() > 1)).map(|(k, _)| k.clone()).collect()
}

/// Deserializes one combination (no lists left) into a typed config.
pub fn resolve<C: DeserializeOwned>(combo: &ParamMap) -> Result<C, ParamError> {
    let mapping: serde_yaml::Mapping = combo.iter().map(|(k, v)| (Value::String(k.clone()), v.clone())).collect();
    serde_path_to_error::deserialize(Value::Mapping(mapping)).map_err(|err| {
        let key = err.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let message = err.into_inner().to_string();
        // serde names the offending field in the message; take it as the key when the path is
        // the map itself (unknown field).
        let key = if key.is_empty() { field_in_message(&message).unwrap_or_default() } else { key };
        ParamError::new(key, plain_message(&message))
    })
}

/// serde's message for a suite author: Rust type names in words, and for an unknown key the
/// closest known one.
pub fn plain_message(message: &str) -> String {
    let mut text = message.to_string();
    for (rust, plain) in [
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        text = text.replace(rust, plain);
    }
    // serde lists the fields as "expected `a`", "expected `a` or `b`" or "expected one of `a`, `b`, …".
    if let (Some(field), Some((_, known))) = (field_in_message(message), message.split_once(", expected ")) {
        let known = known.trim_start_matches("one of ");
        let candidates: Vec<&str> =
            known.split(", ").flat_map(|c| c.split(" or ")).map(|c| c.trim().trim_matches('`')).collect();
        if let Some(close) = did_you_mean(&field, &candidates) {
            text += &format!("; did you mean `{close}`?");
        }
    }
    text
}

/// The candidate closest to `word`, if close enough to be a likely misspelling.
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn field_in_message(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Flattens a typed config into `prefix.key` → JSON scalar, for records and report columns.
pub fn flatten<C: Serialize>(prefix: &str, config: &C, out: &mut BTreeMap<String, serde_json::Value>) {
    let value = serde_json::to_value(config).unwrap_or(serde_json::Value::Null);
    flatten_value(prefix, &value, out);
}

fn flatten_value(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten_value(&format!("{prefix}.{k}"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(yaml: &str) -> ParamMap {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn expands_cartesian_product() {
        let combos = expand(&map("a: [1, 2, 3]\nb: [x, y]\nc: 5")).unwrap();
        assert_eq!(combos.len(), 6);
        assert_eq!(count_combinations(&map("a: [1, 2, 3]\nb: [x, y]\nc: 5")), 6);
        assert_eq!(combos[0]["a"], Value::from(1));
        assert_eq!(combos[1]["b"], Value::from("y"));
        assert_eq!(swept_keys(&map("a: [1, 2]\nb: [3]\nc: 4")), vec!["a".to_string()]);
    }

    #[test]
    fn rejects_empty_and_nested_sweeps() {
        assert_eq!(expand(&map("a: []")).unwrap_err().key, "a");
        assert!(expand(&map("a: [[1]]")).unwrap_err().message.contains("nested"));
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        width: u32,
    }

    #[test]
    fn resolve_names_the_key() {
        let err = resolve::<Cfg>(&map("widht: 3")).unwrap_err();
        assert_eq!(err.key, "widht");
        assert!(err.message.contains("expected `width`"), "{}", err.message);
        let err = resolve::<Cfg>(&map("width: abc")).unwrap_err();
        assert_eq!(err.key, "width");
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn serde_messages_name_types_in_words_and_suggest_the_closest_key() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Config {
            batch_size: u64,
            lr: f64,
        }
        let err = resolve::<Config>(&map("batch_sze: 8\nlr: 0.1")).unwrap_err();
        assert_eq!(err.key, "batch_sze");
        assert!(err.message.ends_with("did you mean `batch_size`?"), "{}", err.message);
        let err = resolve::<Config>(&map("batch_size: ten\nlr: 0.1")).unwrap_err();
        assert!(err.message.contains("expected a whole number ≥ 0"), "{}", err.message);
        assert_eq!(did_you_mean("lstmm", &["lstm", "gru"]), Some("lstm"));
        assert_eq!(did_you_mean("xyz", &["lstm", "gru"]), None);
    }
}
