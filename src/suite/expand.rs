//! Suite → jobs: every task entry × model entry × sweep combination × seed, each resolved into
//! typed configs and validated, so a bad value in any combination is reported before a job runs.
use super::{Entry, Suite};
use crate::error::InputError;
use crate::job::{Component, Job, TrainConfig};
use crate::params::{self, ParamError, ParamMap};
use serde_yaml::Value;
use std::collections::HashMap;

/// Upper bound on jobs from one suite, to catch a sweep typo before it launches a week of work.
pub const MAX_JOBS: usize = 100_000;

fn locate(entry: &Entry, prefix: &str, err: ParamError) -> InputError {
    let key = if prefix.is_empty() || err.key.is_empty() { err.key.clone() } else { format!("{prefix}.{}", err.key) };
    entry.key_error(&key, err.message)
}

/// Defaults merged with a task's overrides; each key knows whether it came from the task.
struct TrainSpec {
    map: ParamMap,
    seeds: Vec<u64>,
}

fn train_spec(suite: &Suite, task: &Entry) -> Result<TrainSpec, InputError> {
    let defaults_origin = suite.origin.child("defaults");
    let mut map = suite.file.defaults.clone();
    map.extend(task.overrides.clone());
    let error_at = |key: &str, message: String| {
        if task.overrides.contains_key(key) {
            task.key_error(&format!("overrides.{key}"), message)
        } else {
            defaults_origin.child(key).error(message)
        }
    };
    let seeds = match map.remove("seeds") {
        None => vec![0],
        Some(v) => {
            let values = params::sweep_values("seeds", &v).map_err(|e| error_at("seeds", e.message))?;
            values
                .iter()
                .map(|s| match s {
                    Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
                    other => Err(error_at(
                        "seeds",
                        format!("expected non-negative integers, found {}", super::load::describe(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let mut unique = seeds.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != seeds.len() {
        return Err(error_at("seeds", "seeds repeat; each seed must appear once".into()));
    }
    let combos = params::expand(&map).map_err(|e| error_at(&e.key, e.message))?;
    for combo in &combos {
        let cfg: TrainConfig = params::resolve(combo).map_err(|e| error_at(&e.key, e.message))?;
        cfg.validate().map_err(|(k, m)| error_at(k, m))?;
    }
    Ok(TrainSpec { map, seeds })
}

fn resolved_train(spec: &TrainSpec) -> Vec<TrainConfig> {
    params::expand(&spec.map).unwrap_or_default().iter().filter_map(|c| params::resolve(c).ok()).collect()
}

fn prefixed(prefix: &str, keys: Vec<String>) -> Vec<String> {
    keys.into_iter().map(|k| format!("{prefix}.{k}")).collect()
}

/// Expands a loaded suite into jobs, in suite order (task, model, sweep, seed).
pub fn expand(suite: &Suite) -> Result<Vec<Job>, InputError> {
    let (jobs, problems) = expand_collecting(suite);
    match InputError::all(problems) {
        Some(all) => Err(all),
        None => Ok(jobs),
    }
}

/// The jobs of the valid combinations, and every problem met on the way.
pub(super) fn expand_collecting(suite: &Suite) -> (Vec<Job>, Vec<InputError>) {
    let mut jobs = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    // Every problem is collected and all are reported together; the same problem met again
    // (a model's, once per task) is listed once.
    let mut problems = Vec::new();
    macro_rules! or_note {
        ($result:expr) => {
            match $result {
                Ok(value) => value,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            }
        };
    }
    for task in &suite.tasks {
        let task_info = or_note!(crate::tasks::find(&task.kind).ok_or_else(|| task.key_error("task", "unknown task")));
        // Bad training settings still let the task's and models' parameters be checked.
        let spec = train_spec(suite, task).map_err(|e| problems.push(e)).ok();
        let trains = spec.as_ref().map(resolved_train).unwrap_or_default();
        let seeds = spec.as_ref().map(|s| s.seeds.clone()).unwrap_or_default();
        let task_combos = or_note!(params::expand(&task.params).map_err(|e| locate(task, "", e)));
        let task_swept = prefixed("task", params::swept_keys(&task.params));
        let train_swept = spec.as_ref().map(|s| prefixed("train", params::swept_keys(&s.map))).unwrap_or_default();
        for model in &suite.models {
            let arch = or_note!(
                crate::models::find(&model.kind).ok_or_else(|| model.key_error("arch", "unknown architecture"))
            );
            let model_combos = or_note!(params::expand(&model.params).map_err(|e| locate(model, "", e)));
            let count = task_combos.len() * model_combos.len() * trains.len() * seeds.len();
            if jobs.len() + count > MAX_JOBS {
                problems.push(
                    suite.origin.error(format!(
                        "the sweeps expand to more than {MAX_JOBS} jobs; narrow them or split the suite"
                    )),
                );
                return (jobs, problems);
            }
            let mut swept = task_swept.clone();
            swept.extend(prefixed("model", params::swept_keys(&model.params)));
            swept.extend(train_swept.iter().cloned());
            for task_combo in &task_combos {
                let task_params = or_note!((task_info.resolve)(task_combo).map_err(|e| locate(task, "", e)));
                let io = or_note!((task_info.io)(&task_params).map_err(|e| task.origin.error(e.to_string())));
                let task_c = Component { kind: task.kind.clone(), label: task.label.clone(), params: task_params };
                for model_combo in &model_combos {
                    let model_params = or_note!((arch.resolve)(model_combo, &io).map_err(|e| locate(model, "", e)));
                    let model_c =
                        Component { kind: model.kind.clone(), label: model.label.clone(), params: model_params };
                    for train in &trains {
                        for &seed in &seeds {
                            let job_id = Job::compute_id(&task_c, &model_c, train, seed);
                            let here = format!("{} × {}", task.origin.path, model.origin.path);
                            if let Some(first) = seen.insert(job_id.clone(), here.clone()) {
                                problems.push(model.origin.error(format!(
                                    "{here} repeats a job of {first} (same task, model, training and seed)"
                                )));
                                continue;
                            }
                            jobs.push(Job {
                                job_id,
                                suite: suite.name().to_string(),
                                task: task_c.clone(),
                                model: model_c.clone(),
                                train: train.clone(),
                                seed,
                                swept: swept.clone(),
                                data_dir: suite.file.data_dir.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    (jobs, problems)
}
