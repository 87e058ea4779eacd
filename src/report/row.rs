//! The part of a record a report reads, borrowed from the JSON line where it can be: a report
//! may parse a million lines, and the fields it does not show (host, times, version…) are
//! skipped without being copied.
use crate::record::de::{deserialize_with_flattened, Text};
use crate::record::{Measurements, Record, Status};
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;

pub struct Row<'a> {
    pub job_id: Text<'a>,
    pub suite: Text<'a>,
    /// Task registry name and display name.
    pub task: Text<'a>,
    pub task_label: Text<'a>,
    /// Model display name and architecture.
    pub model: Text<'a>,
    pub arch: Text<'a>,
    pub seed: u64,
    pub params: Params<'a>,
    pub swept: Vec<Text<'a>>,
    pub status: Status,
    pub reason: Option<Text<'a>>,
    pub wall_s: f64,
    pub measurements: Measurements,
}

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

deserialize_with_flattened!(Row<'de> {
    job_id, suite, task, task_label, model, arch, seed, params, swept, status, reason, wall_s,
} flatten measurements: Measurements);

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

impl<'a> From<&'a Record> for Row<'a> {
    fn from(r: &'a Record) -> Self {
        Row {
            job_id: r.job_id.as_str().into(),
            suite: r.suite.as_str().into(),
            task: r.task.as_str().into(),
            task_label: r.task_label.as_str().into(),
            model: r.model.as_str().into(),
            arch: r.arch.as_str().into(),
            seed: r.seed,
            params: Params(r.params.iter().map(|(k, v)| (k.as_str().into(), v.clone())).collect()),
            swept: r.swept.iter().map(|k| k.as_str().into()).collect(),
            status: r.status,
            reason: r.reason.as_deref().map(Text::from),
            wall_s: r.wall_s,
            measurements: r.measurements.clone(),
        }
    }
}
