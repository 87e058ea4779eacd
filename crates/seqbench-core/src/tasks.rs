//! The task catalogue: what the harness and the report know about each task without building
//! its data — name, description, how it trains, its column in the Long Range Arena table and the
//! parameters that set its length. The job process pairs each entry with its builder (the main
//! crate's `tasks::registry`, in this order); the report reads these facts alone, so it needs no
//! libtorch.

/// How the job process trains on a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Training {
    /// Token splits, the shared training loop.
    Tokens,
    /// A time series under Time-Series-Library's protocol (forecasting).
    Series,
    /// No data, model or training: the harness's own cost per job.
    Nothing,
}

/// The static facts of one task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskFacts {
    pub name: &'static str,
    pub description: &'static str,
    /// How the job process trains on the task's data.
    pub training: Training,
    /// The Long Range Arena table's column this task fills (LRA tasks only), in catalogue order.
    pub lra_column: Option<&'static str>,
    /// The parameters that set the sequence length (which the task's shapes then state): a
    /// sweep over them is what the report draws metrics against length for.
    pub length_params: &'static [&'static str],
    /// Formal languages: the level in the Chomsky hierarchy (`R`, `DCF`, `CS`; `group` for state
    /// tracking), which the generalisation table groups by.
    pub level: Option<&'static str>,
}

/// Every task, in the order `seqbench models` lists them and the LRA table orders its columns.
pub fn all() -> &'static [TaskFacts] {
    static ALL: std::sync::LazyLock<Vec<TaskFacts>> = std::sync::LazyLock::new(|| {
        let mut tasks = vec![
            MQAR,
            SELECTIVE_COPY,
            INDUCTION,
            FORECAST,
            LISTOPS,
            TEXT,
            RETRIEVAL,
            RETRIEVAL_STANDIN,
            IMAGE,
            PATHFINDER,
            PATHX,
            LM,
            PASSKEY,
            ICLL,
        ];
        tasks.extend(FORMAL);
        tasks.extend([FAULT, NOOP]);
        tasks
    });
    &ALL
}

pub fn find(name: &str) -> Option<&'static TaskFacts> {
    all().iter().find(|t| t.name == name)
}

/// The tasks that fill a column of the Long Range Arena table, in the paper's order.
pub fn lra_tasks() -> impl Iterator<Item = &'static TaskFacts> {
    all().iter().filter(|t| t.lra_column.is_some())
}

pub const MQAR: TaskFacts = TaskFacts {
    name: "mqar",
    description: "multi-query associative recall (Zoology): recall the value of each queried key",
    training: Training::Tokens,
    lra_column: None,
    length_params: &["seq_len"],
    level: None,
};

pub const SELECTIVE_COPY: TaskFacts = TaskFacts {
    name: "selective_copy",
    description: "selective copying (Mamba): output the scattered data tokens in order after the markers",
    training: Training::Tokens,
    lra_column: None,
    length_params: &["context", "num_tokens"],
    level: None,
};

pub const INDUCTION: TaskFacts = TaskFacts {
    name: "induction",
    description: "induction heads: after the trigger's second occurrence, predict what followed its first",
    training: Training::Tokens,
    lra_column: None,
    length_params: &["seq_len"],
    level: None,
};

pub const FORECAST: TaskFacts = TaskFacts {
    name: "forecast",
    description: "time-series forecasting, Time-Series-Library protocol (ETT, weather, exchange, illness, your CSV)",
    training: Training::Series,
    lra_column: None,
    length_params: &["seq_len"],
    level: None,
};

pub const LISTOPS: TaskFacts = TaskFacts {
    name: "listops",
    description: "LRA ListOps: value (0–9) of nested MAX/MIN/MED/SM expressions, generated or from LRA TSV files",
    training: Training::Tokens,
    lra_column: Some("ListOps"),
    length_params: &["max_length"],
    level: None,
};

pub const TEXT: TaskFacts = TaskFacts {
    name: "text",
    description: "LRA text: byte-level IMDB sentiment, 2 classes (reviews up to max_length bytes)",
    training: Training::Tokens,
    lra_column: Some("Text"),
    length_params: &["max_length"],
    level: None,
};

pub const RETRIEVAL: TaskFacts = TaskFacts {
    name: "retrieval",
    description: "LRA retrieval: byte-level AAN document matching from LRA's TSV files (not shipped: bring them)",
    training: Training::Tokens,
    lra_column: Some("Retrieval (AAN)"),
    length_params: &["max_length"],
    level: None,
};

pub const RETRIEVAL_STANDIN: TaskFacts = TaskFacts {
    name: "retrieval_standin",
    description: "stand-in for LRA retrieval (NOT AAN): do two IMDB half-reviews come from the same review?",
    training: Training::Tokens,
    lra_column: Some("Retrieval stand-in (IMDB, not AAN)"),
    length_params: &["max_length"],
    level: None,
};

pub const IMAGE: TaskFacts = TaskFacts {
    name: "image",
    description: "LRA image: CIFAR-10 as 1,024 grayscale pixels (256 symbols), 10 classes",
    training: Training::Tokens,
    lra_column: Some("Image"),
    length_params: &[],
    level: None,
};

pub const PATHFINDER: TaskFacts = TaskFacts {
    name: "pathfinder",
    description: "LRA Pathfinder: 32×32 images (1,024 pixel tokens), are the two markers joined by a dashed contour?",
    training: Training::Tokens,
    lra_column: Some("Pathfinder"),
    length_params: &["size"],
    level: None,
};

pub const PATHX: TaskFacts = TaskFacts {
    name: "pathx",
    description: "LRA Path-X: Pathfinder at 128×128 (16,384 pixel tokens)",
    training: Training::Tokens,
    lra_column: Some("Path-X"),
    length_params: &["size"],
    level: None,
};

pub const LM: TaskFacts = TaskFacts {
    name: "lm",
    description: "language modelling on a corpus (IMDB bytes by default, a text file, or uint16 .bin tokens): bits per byte or perplexity, loss by position",
    training: Training::Tokens,
    lra_column: None,
    length_params: &["seq_len"],
    level: None,
};

pub const PASSKEY: TaskFacts = TaskFacts {
    name: "passkey",
    description: "passkey retrieval (byte level): a number hidden in filler at a controlled depth, recalled at the end",
    training: Training::Tokens,
    lra_column: None,
    length_params: &["seq_len"],
    level: None,
};

pub const ICLL: TaskFacts = TaskFacts {
    name: "icll",
    description:
        "in-context language learning (RegBench): strings of an unseen random automaton, predict a valid next letter",
    training: Training::Tokens,
    lra_column: None,
    length_params: &["max_len_per_example", "max_num_in_context_examples"],
    level: None,
};

pub const FAULT: TaskFacts = TaskFacts {
    name: "fault",
    description: "diagnostic: provokes a failure (panic, abort, segfault, hang, error, nan, oom) to test the harness",
    training: Training::Tokens,
    lra_column: None,
    length_params: &[],
    level: None,
};

pub const NOOP: TaskFacts = TaskFacts {
    name: "noop",
    description: "does nothing and succeeds: measures the harness's own cost per job",
    training: Training::Nothing,
    lra_column: None,
    length_params: &[],
    level: None,
};

/// The formal-language and state-tracking tasks, in `Language` order (the paper's).
pub const FORMAL: [TaskFacts; 16] = [
    TaskFacts {
        name: "even_pairs",
        description: "formal (regular): are there an even number of 01 and 10 pairs",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("R"),
    },
    TaskFacts {
        name: "modular_arithmetic",
        description: "formal (regular): value of d op d op … d mod m, with + - * precedence",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("R"),
    },
    TaskFacts {
        name: "parity_check",
        description: "formal (regular): is the number of 1s odd",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("R"),
    },
    TaskFacts {
        name: "cycle_navigation",
        description: "formal (regular): final position after moves on a cycle of 5",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("R"),
    },
    TaskFacts {
        name: "stack_manipulation",
        description: "formal (DCF): the stack after POP/PUSH actions, top first",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("DCF"),
    },
    TaskFacts {
        name: "reverse_string",
        description: "formal (DCF): the string reversed",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("DCF"),
    },
    TaskFacts {
        name: "modular_arithmetic_brackets",
        description: "formal (DCF): value of a bracketed + - * expression mod m",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("DCF"),
    },
    TaskFacts {
        name: "solve_equation",
        description: "formal (DCF): the digit x of a bracketed + - equation mod m",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("DCF"),
    },
    TaskFacts {
        name: "duplicate_string",
        description: "formal (CS): the string twice",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("CS"),
    },
    TaskFacts {
        name: "missing_duplicate_string",
        description: "formal (CS): the symbol missing from a string written twice",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("CS"),
    },
    TaskFacts {
        name: "odds_first",
        description: "formal (CS): symbols at odd positions, then at even ones",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("CS"),
    },
    TaskFacts {
        name: "binary_addition",
        description: "formal (CS): the sum of two little-endian binary numbers",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("CS"),
    },
    TaskFacts {
        name: "binary_multiplication",
        description: "formal (CS): the product of two little-endian binary numbers",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("CS"),
    },
    TaskFacts {
        name: "compute_sqrt",
        description: "formal (CS): floor of the square root of a binary number",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("CS"),
    },
    TaskFacts {
        name: "bucket_sort",
        description: "formal (CS): the string sorted",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("CS"),
    },
    TaskFacts {
        name: "state_tracking",
        description: "state tracking: running product of group elements (S5, A5, Z60, …) at every position",
        training: Training::Tokens,
        lra_column: None,
        length_params: &["train_max_length"],
        level: Some("group"),
    },
];
