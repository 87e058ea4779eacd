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
        ParamError::new(key, message)
    })
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
}
