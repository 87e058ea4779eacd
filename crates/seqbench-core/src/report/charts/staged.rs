//! A task's chart sums per configuration (model and swept parameters), before they meet the
//! maps keyed by label. A configuration is found by a hash of its parts, read from the record
//! without building text: a million-record report built three labels and made about eight
//! look-ups by label per record, which cost 13 % of its time (0.45 s of 3.4 s; no charts at
//! all against charts, five alternating runs). Labels are built once per configuration and
//! the sums meet the label-keyed maps once per configuration and piece of the file.
use super::{config_label, Mean, MeanCurve};
use crate::report::row::Row;
use crate::tasks::TaskFacts;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Every configuration seen in one piece of the file, in the order first seen (so that sums
/// are added in the same order on every run).
#[derive(Default)]
pub(super) struct Staged {
    by_hash: FxHashMap<u64, Vec<usize>>,
    pub(super) slots: Vec<Slot>,
}

/// One configuration: what tells it apart, its labels, and the sums of its records.
pub(super) struct Slot {
    model: String,
    /// The swept parameters, in the record's order, with their values.
    swept: Vec<(String, Option<serde_json::Value>)>,
    /// Model and every swept parameter: the label of loss curves and accuracy against throughput.
    pub(super) label: String,
    /// Without the task's length parameters: one line of a chart against sequence length.
    pub(super) label_without_length: String,
    /// Without `model.d_model`: one line of a chart against width.
    pub(super) label_without_width: String,
    /// Whether a length parameter, or `model.d_model`, is swept.
    pub(super) length_swept: bool,
    pub(super) width_swept: bool,
    pub(super) mean_curve: MeanCurve,
    pub(super) accuracy_vs_throughput: Option<(Mean, Mean)>,
    pub(super) vs_seq_len: BTreeMap<i64, Vec<Mean>>,
    pub(super) vs_width: BTreeMap<i64, Mean>,
    pub(super) vs_state: BTreeMap<i64, Mean>,
}

/// Whether `key` (`task.seq_len`) sets the length of `task`'s sequences.
pub(super) fn sets_length(task: Option<&TaskFacts>, key: &str) -> bool {
    let length_params = task.map_or(&[][..], |t| t.length_params);
    key.strip_prefix("task.").is_some_and(|k| length_params.contains(&k))
}

impl Slot {
    fn of(r: &Row, task: Option<&TaskFacts>) -> Slot {
        let mut text = String::new();
        let mut label = |skip: &dyn Fn(&str) -> bool| config_label(r, skip, &mut text).to_string();
        Slot {
            model: r.model.to_string(),
            swept: r.swept.iter().map(|k| (k.to_string(), r.params.get(k).cloned())).collect(),
            label: label(&|_| false),
            label_without_length: label(&|k| sets_length(task, k)),
            label_without_width: label(&|k| k == "model.d_model"),
            length_swept: r.swept.iter().any(|k| sets_length(task, k)),
            width_swept: r.swept.iter().any(|k| **k == *"model.d_model"),
            mean_curve: MeanCurve::default(),
            accuracy_vs_throughput: None,
            vs_seq_len: BTreeMap::new(),
            vs_width: BTreeMap::new(),
            vs_state: BTreeMap::new(),
        }
    }

    /// Whether `r` is of this configuration.
    fn holds(&self, r: &Row) -> bool {
        self.model == *r.model
            && self.swept.len() == r.swept.len()
            && self.swept.iter().zip(&r.swept).all(|((k, v), key)| *k == **key && v.as_ref() == r.params.get(key))
    }
}

/// The hash of `r`'s configuration: its model and swept parameters with their values.
fn configuration_hash(r: &Row) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    (*r.model).hash(&mut hasher);
    for key in &r.swept {
        (**key).hash(&mut hasher);
        r.params.get(key).hash(&mut hasher);
    }
    hasher.finish()
}

impl Staged {
    /// The slot of `r`'s configuration (made when new), and whether it is new.
    pub(super) fn slot(&mut self, r: &Row, task: Option<&TaskFacts>) -> (&mut Slot, bool) {
        let candidates = self.by_hash.entry(configuration_hash(r)).or_default();
        if let Some(&i) = candidates.iter().find(|&&i| self.slots[i].holds(r)) {
            return (&mut self.slots[i], false);
        }
        candidates.push(self.slots.len());
        self.slots.push(Slot::of(r, task));
        (self.slots.last_mut().expect("pushed above"), true)
    }

    /// The slots, in the order first seen; none are left.
    pub(super) fn take(&mut self) -> Vec<Slot> {
        self.by_hash.clear();
        std::mem::take(&mut self.slots)
    }
}
