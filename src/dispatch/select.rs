//! `--only KEY=VALUE`: run (or plan) part of a suite without editing it, as `pytest -k` or
//! Hydra's overrides let one rerun a slice. KEY is `model` or `task` (a suite entry's name or
//! its registry name), `seed`, a parameter as `seqbench plan` prints it (`model.d_model`,
//! `task.seq_len`, `train.lr`), or a parameter's bare name (`d_model`) wherever it appears.
//! The same KEY given again widens the choice (either value); different KEYs narrow it (both).
use crate::error::InputError;
use crate::job::Job;
use std::collections::{BTreeMap, BTreeSet};

/// The `--only` conditions, grouped by key.
#[derive(Debug, Default)]
pub struct Selection {
    wanted: BTreeMap<String, Vec<String>>,
}

impl Selection {
    /// Parses `KEY=VALUE` flags; the error names the flag and shows the expected form.
    pub fn parse(flags: &[String]) -> Result<Selection, InputError> {
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for flag in flags {
            let (key, value) = flag
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| {
                    InputError::new(format!(
                        "--only {flag}: expected KEY=VALUE, e.g. `--only model=rwkv7`, `--only task.seq_len=512`"
                    ))
                })?;
            wanted.entry(key.to_string()).or_default().push(value.to_string());
        }
        Ok(Selection { wanted })
    }

    /// Checks that the selection admits some of `jobs`. A key that no job has, or a condition
    /// that admits no job, is an error listing what the jobs do have: a typo must not run
    /// nothing, silently.
    pub fn check(&self, jobs: &[Job]) -> Result<(), InputError> {
        if self.wanted.is_empty() {
            return Ok(()); // no --only: every job, even of a suite that has none
        }
        for (key, values) in &self.wanted {
            let seen: BTreeSet<String> = jobs.iter().flat_map(|j| job_values(j, key)).collect();
            if seen.is_empty() {
                let keys = known_keys(jobs);
                let close = crate::params::did_you_mean(key, &keys.iter().map(String::as_str).collect::<Vec<_>>())
                    .map_or(String::new(), |k| format!("did you mean `{k}`? "));
                return Err(InputError::new(format!(
                    "--only {key}=…: no job of the suite has `{key}`; {close}use model, task, seed or a parameter \
                     as `seqbench plan` prints it (e.g. model.d_model, task.seq_len, train.lr)"
                )));
            }
            if !values.iter().any(|v| seen.iter().any(|s| same_value(s, v))) {
                let shown: Vec<&str> = seen.iter().take(12).map(String::as_str).collect();
                let more = if seen.len() > shown.len() {
                    format!(" and {} more", seen.len() - shown.len())
                } else {
                    String::new()
                };
                return Err(InputError::new(format!(
                    "--only {key}={}: no job has that; the suite's jobs have {key} = {}{more}",
                    values.join(" / "),
                    shown.join(", ")
                )));
            }
        }
        if !jobs.iter().any(|j| self.admits(j)) {
            let flags: Vec<String> =
                self.wanted.iter().flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}"))).collect();
            return Err(InputError::new(format!(
                "--only {}: each condition matches some job, but no job matches all of them",
                flags.join(" --only ")
            )));
        }
        Ok(())
    }

    /// Whether `job` meets every condition (any job, when there are none).
    pub fn admits(&self, job: &Job) -> bool {
        self.wanted.iter().all(|(key, values)| {
            let have = job_values(job, key);
            values.iter().any(|v| have.iter().any(|h| same_value(h, v)))
        })
    }
}

/// What `job` has under `key`, as text: both names for `model` and `task`, and a bare
/// parameter name's value in each of task, model and train that has it.
fn job_values(job: &Job, key: &str) -> Vec<String> {
    match key {
        "model" => vec![job.model.label.clone(), job.model.kind.clone()],
        "task" => vec![job.task.label.clone(), job.task.kind.clone()],
        "seed" => vec![job.seed.to_string()],
        _ => {
            let params = job.flat_params();
            let text = crate::report::frame::param_text;
            match params.get(key) {
                Some(value) => vec![text(value)],
                None => ["task", "model", "train"]
                    .iter()
                    .filter_map(|section| params.get(&format!("{section}.{key}")).map(text))
                    .collect(),
            }
        }
    }
}

/// Every key `--only` accepts for these jobs: the fixed ones, each parameter as `plan` prints it
/// and its bare name.
fn known_keys(jobs: &[Job]) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = ["model", "task", "seed"].map(String::from).into();
    for job in jobs {
        for key in job.flat_params().into_keys() {
            if let Some((_, bare)) = key.split_once('.') {
                keys.insert(bare.to_string());
            }
            keys.insert(key);
        }
    }
    keys
}

/// Equal as text, or as numbers (`3e-3` is `0.003`, `512` is `512.0`).
fn same_value(have: &str, want: &str) -> bool {
    have == want || matches!((have.parse::<f64>(), want.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::same_value;

    #[test]
    fn numbers_compare_as_numbers_and_text_as_text() {
        assert!(same_value("0.003", "3e-3"));
        assert!(same_value("512", "512.0"));
        assert!(!same_value("512", "51"));
        assert!(same_value("rwkv7", "rwkv7"));
        assert!(!same_value("rwkv7", "rwkv6"));
    }
}
