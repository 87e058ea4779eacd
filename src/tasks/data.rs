//! Where dataset files are found: the suite's `data_dir`, then `$SEQBENCH_DATA`, then
//! `../shared/datasets` beside the working directory and beside the checkout the binary was
//! built from. A missing file is an error naming every place tried and where the file comes
//! from — never a silent fallback to random data.
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Environment variable naming a datasets directory.
pub const DATA_ENV: &str = "SEQBENCH_DATA";

/// The directories searched, in order.
pub fn search_dirs(suite_data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    dirs.extend(suite_data_dir.map(Path::to_path_buf));
    if let Ok(d) = std::env::var(DATA_ENV) {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("../shared/datasets"));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
    dirs
}

/// `relative` (e.g. `ett/ETTh1.csv`) in the first search directory that has it. `source` says
/// where the file can be obtained, for the error message.
pub fn locate(relative: &str, suite_data_dir: Option<&Path>, source: &str) -> Result<PathBuf> {
    let tried: Vec<PathBuf> = search_dirs(suite_data_dir).into_iter().map(|d| d.join(relative)).collect();
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| format!("  {}", p.display())).collect();
    bail!(
        "dataset file `{relative}` not found; tried:\n{}\nIt comes from {source}. Put it under one of those directories, set `data_dir:` in the suite or ${DATA_ENV}.",
        list.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_names_every_place_tried_and_the_source() {
        let err = locate("nowhere/none.csv", Some(Path::new("/suite/data")), "the moon").unwrap_err().to_string();
        assert!(err.contains("/suite/data/nowhere/none.csv"), "{err}");
        assert!(err.contains("../shared/datasets/nowhere/none.csv"), "{err}");
        assert!(err.contains("the moon"), "{err}");
    }
}
