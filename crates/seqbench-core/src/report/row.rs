//! A record as a report reads it, borrowed from the JSON line where it can be: a report may
//! parse a million lines, and a string without escapes is then never copied.
use crate::record::de::Text;
use crate::record::{Record, RecordOf};
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;

/// A record as a report reads it: the same fields as [`Record`], strings borrowed.
pub type Row<'a> = RecordOf<Text<'a>, Params<'a>>;

impl Row<'_> {
    /// The swept task parameters as `name=value` (`seq_len=64`): what tells two configurations
    /// of one task entry apart.
    pub fn swept_task_params(&self) -> Vec<String> {
        self.swept
            .iter()
            .filter_map(|k| {
                let short = k.strip_prefix("task.")?;
                Some(format!("{short}={}", self.params.get(k).map(super::frame::param_text).unwrap_or_default()))
            })
            .collect()
    }
}

/// Every resolved parameter, in the record's order (a list: a report looks up a few keys, and a
/// map would cost an allocation per entry).
pub struct Params<'a>(pub Vec<(Text<'a>, serde_json::Value)>);

impl Params<'_> {
    /// The value of `key`; the last one if the key repeats, as a map would keep.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.iter().rfind(|(k, _)| **k == *key).map(|(_, v)| v)
    }
}

impl<'de> serde::Deserialize<'de> for Params<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Params(out))
            }
        }
        deserializer.deserialize_map(ParamsVisitor)
    }
}

/// Calls `f` with `record` as a report reads it (through its JSON line, as from a file).
pub fn with_row<T>(record: &Record, f: impl FnOnce(&Row) -> T) -> T {
    let line = serde_json::to_vec(record).expect("a record serializes");
    f(&serde_json::from_slice::<Row>(&line).expect("a record's own line reads back"))
}
