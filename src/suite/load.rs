//! Reading a suite file: UTF-8 and YAML syntax, the top-level schema, model presets.
use super::locate::Locator;
use super::{Entry, Origin, Suite, SuiteFile};
use crate::error::InputError;
use crate::params::ParamMap;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn read_text(path: &Path, what: &str) -> Result<String, InputError> {
    let err = |m: String| InputError::new(m).in_file(path);
    if path.is_dir() {
        return Err(err(format!("is a directory; expected a {what} YAML file")));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read {what}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
        let line = text.matches('\n').count() + 1;
        let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        err(format!("not valid UTF-8 (byte offset {at})")).at(Some((line, col)))
    })
}

/// Parses YAML text into `T`, turning serde errors into located [`InputError`]s.
fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &Path, locator: &Locator) -> Result<T, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new("file is empty; expected a YAML mapping").in_file(path));
    }
    if let Some((key, at)) = locator.first_duplicate() {
        return Err(InputError::new("this key appears twice in the same map; keep one")
            .in_file(path)
            .at_key(key.clone())
            .at(Some(*at)));
    }
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let key = err.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = err.into_inner();
        let mut message = inner.to_string();
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        let mut message = crate::params::plain_message(&message);
        let line_col = inner.location().map(|l| (l.line(), l.column())).or_else(|| locator.find(&key));
        // A syntax error has no key yet (serde_path_to_error says `?`).
        let key = if key == "?" { String::new() } else { key };
        if let Some(hint) = yaml_syntax_hint(&message) {
            message += &format!(" (YAML syntax: {hint})");
        }
        InputError::new(message).in_file(path).at_key(key).at(line_col)
    })
}

/// "unknown `what` `name`; did you mean …? expected one of: …" for a registry name.
fn unknown_name(what: &str, name: &str, names: &[&str]) -> String {
    let hint = crate::params::did_you_mean(name, names).map(|n| format!("did you mean `{n}`? ")).unwrap_or_default();
    format!("unknown {what} `{name}`; {hint}expected one of: {}", names.join(", "))
}

/// What libyaml's syntax messages usually mean in a suite file.
fn yaml_syntax_hint(message: &str) -> Option<&'static str> {
    const HINTS: &[(&str, &str)] = &[
        ("did not find expected key", "a line is indented differently from the keys beside it, or a key lacks its `:`"),
        ("did not find expected '-' indicator", "list items must start with `- ` at the same column"),
        ("did not find expected ',' or ']'", "a `[…]` list is not closed, or two items lack a comma between them"),
        ("did not find expected ',' or '}'", "a `{…}` map is not closed, or two entries lack a comma between them"),
        ("tab character", "indent with spaces; YAML does not allow tabs there"),
        (
            "mapping values are not allowed",
            "a `:` where a value was expected: quote the value, or add the space after `-`",
        ),
        (
            "found character that cannot start any token",
            "a character such as `@` or a backtick cannot start a value: quote it",
        ),
    ];
    HINTS.iter().find(|(pattern, _)| message.contains(pattern)).map(|(_, hint)| *hint)
}

/// Loads and checks a suite file.
pub fn load(path: &Path) -> Result<Suite, InputError> {
    let text = read_text(path, "suite")?;
    load_str(&text, path)
}

/// Parses suite text; `path` names it in errors and anchors preset look-up.
pub fn load_str(text: &str, path: &Path) -> Result<Suite, InputError> {
    let locator = Arc::new(Locator::new(text));
    let file: SuiteFile = parse(text, path, &locator)?;
    let origin = Origin { file: Arc::new(path.to_path_buf()), locator, path: String::new() };
    let valid_name = !file.name.is_empty()
        && file.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !file.name.starts_with('.');
    if !valid_name {
        return Err(origin.child("name").error(format!(
            "`{}` is not a valid suite name; expected letters, digits, `-`, `_` or `.` (it names the results folder)",
            file.name
        )));
    }
    if file.models.is_empty() {
        return Err(origin.child("models").error("no models; expected at least one entry with `arch:`"));
    }
    if file.tasks.is_empty() {
        return Err(origin.child("tasks").error("no tasks; expected at least one entry with `task:`"));
    }
    // Every entry is checked, and every problem reported at once.
    let mut problems = Vec::new();
    let models: Vec<Entry> = file
        .models
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            model_entry(m, origin.child(&format!("models[{i}]")), path).map_err(|e| problems.push(e)).ok()
        })
        .collect();
    let tasks: Vec<Entry> = file
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| task_entry(t, origin.child(&format!("tasks[{i}]"))).map_err(|e| problems.push(e)).ok())
        .collect();
    problems.extend(unique_labels(&models).err());
    problems.extend(unique_labels(&tasks).err());
    if !problems.is_empty() {
        // The valid entries are expanded too, so that their problems are in the same list.
        let partial = Suite { file: file.clone(), path: path.to_path_buf(), origin: origin.clone(), models, tasks };
        problems.extend(super::expand::expand_collecting(&partial).1);
        return Err(InputError::all(problems).expect("there are problems"));
    }
    Ok(Suite { file, path: path.to_path_buf(), origin, models, tasks })
}

/// The report groups by display name, so two entries may not share one.
fn unique_labels(entries: &[Entry]) -> Result<(), InputError> {
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = entries[..i].iter().find(|f| f.label == e.label) {
            return Err(e.key_error(
                "name",
                format!(
                    "the name `{}` is already used by {}; give each entry its own `name:` so results can be told apart",
                    e.label, first.origin.path
                ),
            ));
        }
    }
    Ok(())
}

fn take_string(map: &mut ParamMap, key: &str, origin: &Origin) -> Result<Option<String>, InputError> {
    match map.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(origin.child(key).error(format!("expected a string, found {}", describe(&other)))),
    }
}

pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

fn origins_for(map: &ParamMap, origin: &Origin) -> BTreeMap<String, Origin> {
    map.keys().map(|k| (k.clone(), origin.child(k))).collect()
}

fn model_entry(raw: &ParamMap, origin: Origin, suite_path: &Path) -> Result<Entry, InputError> {
    let mut params = raw.clone();
    let label = take_string(&mut params, "name", &origin)?;
    let preset = take_string(&mut params, "preset", &origin)?;
    let mut arch = take_string(&mut params, "arch", &origin)?;
    let mut key_origins = BTreeMap::new();
    if let Some(preset) = &preset {
        let (preset_arch, preset_params, preset_origins) = load_preset(preset, &origin, suite_path)?;
        if let Some(a) = &arch {
            if *a != preset_arch {
                return Err(origin
                    .child("arch")
                    .error(format!("preset `{preset}` is a `{preset_arch}` model but this entry says arch `{a}`")));
            }
        }
        arch = Some(preset_arch);
        key_origins = preset_origins;
        let mut merged = preset_params;
        merged.extend(params);
        params = merged;
    }
    key_origins.extend(origins_for(raw, &origin));
    let arch = arch.ok_or_else(|| {
        origin.error(format!("model entry needs `arch:` (one of: {}) or `preset:`", crate::models::names().join(", ")))
    })?;
    if crate::models::find(&arch).is_none() {
        let known = unknown_name("architecture", &arch, &crate::models::names());
        return Err(origin.child("arch").error(format!("{known} (see `seqbench models`)")));
    }
    if crate::models::runs_user_code(&arch) {
        anchor_python_module(&mut params, suite_path);
        flatten_kwargs(&mut params);
    }
    let label = label.or(preset).unwrap_or_else(|| arch.clone());
    Ok(Entry { kind: arch, label, params, overrides: ParamMap::new(), origin, key_origins })
}

fn task_entry(raw: &ParamMap, origin: Origin) -> Result<Entry, InputError> {
    let mut params = raw.clone();
    let label = take_string(&mut params, "name", &origin)?;
    let task = take_string(&mut params, "task", &origin)?.ok_or_else(|| {
        origin.error(format!("task entry needs `task:` (one of: {})", crate::tasks::names().join(", ")))
    })?;
    if crate::tasks::find(&task).is_none() {
        return Err(origin.child("task").error(unknown_name("task", &task, &crate::tasks::names())));
    }
    let overrides = match params.remove("overrides") {
        None => ParamMap::new(),
        Some(v @ Value::Mapping(_)) => serde_yaml::from_value(v)
            .map_err(|e| origin.child("overrides").error(format!("expected a map of string keys: {e}")))?,
        Some(other) => {
            return Err(origin
                .child("overrides")
                .error(format!("expected a map of training settings, found {}", describe(&other))))
        }
    };
    let mut key_origins = origins_for(&params, &origin);
    let ov_origin = origin.child("overrides");
    key_origins.extend(overrides.keys().map(|k| (format!("overrides.{k}"), ov_origin.child(k))));
    let label = label.unwrap_or_else(|| task.clone());
    Ok(Entry { kind: task, label, params, overrides, origin, key_origins })
}

/// A Python layer's `module: file.py` is relative to the suite file when such a file is there
/// (as presets are), else left to the working directory.
fn anchor_python_module(params: &mut ParamMap, suite_path: &Path) {
    let Some(Value::String(module)) = params.get("module") else { return };
    let path = Path::new(module);
    if !module.ends_with(".py") || path.is_absolute() {
        return;
    }
    let beside = suite_path.parent().unwrap_or(Path::new(".")).join(path);
    if beside.is_file() {
        params.insert("module".into(), Value::String(beside.to_string_lossy().into_owned()));
    }
}

/// A Python layer's `kwargs: {a: 1, b: [2, 3]}` becomes `kwargs.a: 1`, `kwargs.b: [2, 3]`, so
/// that its values sweep like any other parameter (the form hybrid models use for their parts).
fn flatten_kwargs(params: &mut ParamMap) {
    let Some(Value::Mapping(kwargs)) = params.get("kwargs").cloned() else { return };
    params.remove("kwargs");
    for (key, value) in kwargs {
        let key = match key {
            Value::String(k) => k,
            other => serde_yaml::to_string(&other).unwrap_or_default().trim().to_string(),
        };
        params.insert(format!("kwargs.{key}"), value);
    }
}

/// Candidate paths of a preset: as given if it looks like a path, else `configs/models/NAME.yaml`
/// beside the suite, one level up (suites/ and configs/ are siblings), and in the working dir.
fn preset_candidates(preset: &str, suite_path: &Path) -> Vec<PathBuf> {
    let suite_dir = suite_path.parent().unwrap_or(Path::new("."));
    if preset.ends_with(".yaml") || preset.ends_with(".yml") || preset.contains('/') {
        return vec![suite_dir.join(preset), PathBuf::from(preset)];
    }
    let rel = PathBuf::from("configs").join("models").join(format!("{preset}.yaml"));
    vec![suite_dir.join(&rel), suite_dir.join("..").join(&rel), rel]
}

/// The presets of configs/models built into the binary: (name, YAML text), sorted by name.
pub static BUNDLED_PRESETS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/presets.rs"));

fn load_preset(
    preset: &str,
    origin: &Origin,
    suite_path: &Path,
) -> Result<(String, ParamMap, BTreeMap<String, Origin>), InputError> {
    let candidates = preset_candidates(preset, suite_path);
    // A file beside the suite or in the working dir, else the copy built into the binary.
    let (path, text) = match candidates.iter().find(|p| p.is_file()) {
        Some(path) => (path.clone(), read_text(path, "preset")?),
        None => match BUNDLED_PRESETS.iter().find(|(name, _)| *name == preset) {
            Some((_, text)) => (PathBuf::from(format!("<built-in>/configs/models/{preset}.yaml")), text.to_string()),
            None => {
                let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
                let names: Vec<&str> = BUNDLED_PRESETS.iter().map(|(name, _)| *name).collect();
                let hint = crate::params::did_you_mean(preset, &names)
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                return Err(origin.child("preset").error(format!(
                    "preset `{preset}` not found; {hint}tried {} and the built-in presets ({})",
                    tried.join(", "),
                    names.join(", ")
                )));
            }
        },
    };
    let path = &path;
    let locator = Arc::new(Locator::new(&text));
    let mut params: ParamMap = parse(&text, path, &locator)?;
    let p_origin = Origin { file: Arc::new(path.clone()), locator, path: String::new() };
    if params.contains_key("preset") {
        return Err(p_origin.child("preset").error("presets cannot refer to other presets"));
    }
    params.remove("description");
    params.remove("name");
    let arch =
        take_string(&mut params, "arch", &p_origin)?.ok_or_else(|| p_origin.error("a model preset needs `arch:`"))?;
    let origins = origins_for(&params, &p_origin);
    Ok((arch, params, origins))
}
