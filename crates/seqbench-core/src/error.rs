//! Error types that users see. Bad input (suite files, flags, data) is a [`InputError`] and
//! exits with code 2; everything else exits with 1.
use std::fmt;
use std::path::PathBuf;

/// Exit code when every job ran but at least one did not finish with status `ok`.
pub const EXIT_JOBS_FAILED: u8 = 3;

/// A problem with something the user gave us, located as precisely as we can.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file the problem is in (suite, preset, data file), if any.
    pub file: Option<PathBuf>,
    /// 1-based line and column, where known.
    pub line_col: Option<(usize, usize)>,
    /// Key path inside the file, e.g. `models[0].d_model`; empty when not applicable.
    pub key_path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        InputError { file: None, line_col: None, key_path: String::new(), message: message.into() }
    }

    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn at_key(mut self, key_path: impl Into<String>) -> Self {
        self.key_path = key_path.into();
        self
    }

    pub fn at(mut self, line_col: Option<(usize, usize)>) -> Self {
        self.line_col = line_col;
        self
    }
}

impl InputError {
    /// One error that lists several, or `None` when there are none: a suite's problems are all
    /// reported in one pass. One per place (file, position, key), the first: a value swept over
    /// several combinations would otherwise be reported once per combination.
    pub fn all(errors: Vec<InputError>) -> Option<InputError> {
        let mut seen = std::collections::HashSet::new();
        let mut unique: Vec<InputError> = errors
            .into_iter()
            .filter(|e| {
                let place = (e.file.clone(), e.line_col, e.key_path.clone());
                let anywhere = e.file.is_none() && e.key_path.is_empty();
                seen.insert(if anywhere { (None, None, e.message.clone()) } else { place })
            })
            .collect();
        match unique.len() {
            0 => None,
            1 => unique.pop(),
            n => {
                let lines: Vec<String> = unique.iter().map(|e| format!("  - {e}")).collect();
                Some(InputError::new(format!("{n} problems:\n{}", lines.join("\n"))))
            }
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, col)) = self.line_col {
                write!(f, ":{line}:{col}")?;
            }
            write!(f, ": ")?;
        }
        if !self.key_path.is_empty() {
            write!(f, "`{}`: ", self.key_path)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for InputError {}

/// Maps an error to the process exit code: 2 for bad input, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.downcast_ref::<InputError>().is_some()) {
        2
    } else {
        1
    }
}
