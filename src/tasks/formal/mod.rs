//! Formal languages (Delétang et al. 2023, "Neural Networks and the Chomsky Hierarchy") and
//! state tracking over finite groups, under the paper's length-generalisation protocol: train
//! on lengths drawn uniformly from a range, evaluate on every length beyond it, each evaluated
//! length a named split (`len=N`) with its own accuracy.
//!
//! Encoding, as the paper's `make_model_with_empty_targets`: the input tokens (the paper's ids),
//! then one query token per output position; the model answers at the query positions. A causal
//! model sees the whole input from every query position. Examples of different lengths share a
//! batch, right-padded with a pad token that carries no target (the paper draws one length per
//! batch; causal models cannot see padding that follows, so the outputs are the same).
//! Accuracy is per output position, up to and including the end token where the task has one
//! (the paper's `accuracy_mask`); positions after it carry neither loss nor accuracy here (the
//! paper trains them towards 0).
//!
//! State tracking has no query tokens: the target at every position is the running product.
pub mod cs;
pub mod dcf;
pub mod groups;
pub mod regular;

use super::{BuildContext, TaskData, TaskFacts, TaskInfo, TokenSplit, IGNORE};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use crate::rng::SplitMix64;
use groups::Group;
use serde::{Deserialize, Serialize};

/// One sampled example: the task's input tokens and output classes; the first `scored` outputs
/// are scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub input: Vec<i64>,
    pub output: Vec<i64>,
    pub scored: usize,
}

/// The end token of the outputs that have one (binary arithmetic, stack manipulation).
pub const TERMINATOR: i64 = 2;

impl Example {
    fn single(input: Vec<i64>, class: i64) -> Self {
        Example { input, output: vec![class], scored: 1 }
    }

    fn sequence(input: Vec<i64>, output: Vec<i64>) -> Self {
        let scored = output.len();
        Example { input, output, scored }
    }

    /// `answer`, the end token, then 0s up to `length` outputs; scored up to the end token.
    fn terminated(input: Vec<i64>, mut answer: Vec<i64>, length: usize) -> Self {
        let scored = answer.len() + 1;
        answer.push(TERMINATOR);
        answer.resize(length, 0);
        Example { input, output: answer, scored }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    EvenPairs,
    ModularArithmetic,
    ParityCheck,
    CycleNavigation,
    StackManipulation,
    ReverseString,
    ModularArithmeticBrackets,
    SolveEquation,
    DuplicateString,
    MissingDuplicateString,
    OddsFirst,
    BinaryAddition,
    BinaryMultiplication,
    ComputeSqrt,
    BucketSort,
    StateTracking,
}

/// Task-specific keys beyond the length protocol.
const MODULUS: &str = "modulus";
const VOCAB: &str = "vocab_size";
const GROUP: &str = "group";

impl Language {
    pub const ALL: [Language; 16] = [
        Language::EvenPairs,
        Language::ModularArithmetic,
        Language::ParityCheck,
        Language::CycleNavigation,
        Language::StackManipulation,
        Language::ReverseString,
        Language::ModularArithmeticBrackets,
        Language::SolveEquation,
        Language::DuplicateString,
        Language::MissingDuplicateString,
        Language::OddsFirst,
        Language::BinaryAddition,
        Language::BinaryMultiplication,
        Language::ComputeSqrt,
        Language::BucketSort,
        Language::StateTracking,
    ];

    /// The task's catalogue entry (name, description, level).
    pub const fn facts(self) -> &'static TaskFacts {
        &seqbench_core::tasks::FORMAL[self as usize]
    }

    pub const fn name(self) -> &'static str {
        self.facts().name
    }

    pub fn from_name(name: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The task-specific keys this task takes and their defaults (the paper's).
    fn extras(self) -> &'static [(&'static str, &'static str)] {
        use Language::*;
        match self {
            ModularArithmetic | ModularArithmeticBrackets | SolveEquation => &[(MODULUS, "5")],
            ReverseString | DuplicateString | OddsFirst => &[(VOCAB, "2")],
            BucketSort => &[(VOCAB, "5")],
            StateTracking => &[(GROUP, "S5")],
            _ => &[],
        }
    }

    /// The input tokens of an example of `length` (modular arithmetic keeps them odd).
    pub fn input_length(self, length: usize) -> usize {
        match self {
            Language::ModularArithmetic if length.is_multiple_of(2) => length - 1,
            _ => length,
        }
    }

    /// Outputs after an input of `length` tokens (0: targets sit on the inputs).
    pub fn output_length(self, length: usize) -> usize {
        use Language::*;
        match self {
            StackManipulation | BinaryAddition => length + 1,
            ReverseString | OddsFirst | BinaryMultiplication | BucketSort => length,
            DuplicateString => 2 * length,
            ComputeSqrt => length.div_ceil(2),
            StateTracking => 0,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormalConfig {
    /// Training lengths are uniform in `train_min_length..=train_max_length` (the paper: 1..=40).
    pub train_min_length: usize,
    pub train_max_length: usize,
    /// Evaluated lengths: `test_min_length..=test_max_length` every `test_length_step` (the
    /// paper: every length in 41..=500), each a split `len=N` of `test_examples` examples.
    pub test_min_length: usize,
    pub test_max_length: usize,
    pub test_length_step: usize,
    /// Training examples (the paper samples a fresh batch every step: make this large).
    pub train_examples: usize,
    /// Examples per evaluated length, and of the in-distribution test split (the paper: 512).
    pub test_examples: usize,
    /// `modular_arithmetic`, `modular_arithmetic_brackets`, `solve_equation`: the modulus (5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modulus: Option<i64>,
    /// String tasks: the alphabet size (2; `bucket_sort` 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<i64>,
    /// `state_tracking`: the group (S5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub data_seed: Option<u64>,
}

impl Default for FormalConfig {
    fn default() -> Self {
        FormalConfig {
            train_min_length: 1,
            train_max_length: 40,
            test_min_length: 41,
            test_max_length: 500,
            test_length_step: 1,
            train_examples: 100_000,
            test_examples: 512,
            modulus: None,
            vocab_size: None,
            group: None,
            data_seed: None,
        }
    }
}

/// Tokens (inputs and padding) held in memory per job, as for the other generators.
const MAX_TOKENS: u128 = 2_000_000_000;

impl FormalConfig {
    /// Fills the task's own keys with their defaults and refuses keys of other tasks.
    fn complete(mut self, lang: Language) -> Result<Self, (&'static str, String)> {
        let takes = |key: &str| lang.extras().iter().find(|(k, _)| *k == key).map(|(_, default)| *default);
        for (key, set) in
            [(MODULUS, self.modulus.is_some()), (VOCAB, self.vocab_size.is_some()), (GROUP, self.group.is_some())]
        {
            if set && takes(key).is_none() {
                let takes_list: Vec<&str> = lang.extras().iter().map(|(k, _)| *k).collect();
                let own = match takes_list.as_slice() {
                    [] => "it takes only the length and size keys".to_string(),
                    keys => format!("its own keys: {}", keys.join(", ")),
                };
                return Err((key, format!("does not apply to task `{}` ({own})", lang.name())));
            }
        }
        let int = |key| takes(key).map(|d: &str| d.parse::<i64>().expect("numeric default"));
        self.modulus = self.modulus.or(int(MODULUS));
        self.vocab_size = self.vocab_size.or(int(VOCAB));
        self.group = self.group.or(takes(GROUP).map(String::from));
        self.validate(lang)?;
        Ok(self)
    }

    fn validate(&self, lang: Language) -> Result<(), (&'static str, String)> {
        if self.train_min_length < 1 || self.train_min_length > self.train_max_length {
            return Err((
                "train_min_length",
                format!("must be in 1..=train_max_length ({}), got {}", self.train_max_length, self.train_min_length),
            ));
        }
        if self.test_min_length < 1 || self.test_min_length > self.test_max_length {
            return Err((
                "test_min_length",
                format!("must be in 1..=test_max_length ({}), got {}", self.test_max_length, self.test_min_length),
            ));
        }
        if self.test_length_step < 1 {
            return Err(("test_length_step", "must be at least 1".into()));
        }
        for (key, n) in [("train_examples", self.train_examples), ("test_examples", self.test_examples)] {
            if n == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if let Some(m) = self.modulus.filter(|m| !(2..=10).contains(m)) {
            // `solve_equation` writes the value as one digit; the others keep the same range.
            return Err((MODULUS, format!("must be in 2..=10 (the answer is one digit), got {m}")));
        }
        if let Some(v) = self.vocab_size.filter(|v| !(2..=256).contains(v)) {
            return Err((VOCAB, format!("must be in 2..=256, got {v}")));
        }
        if let Some(g) = &self.group {
            Group::parse(g).map_err(|e| (GROUP, e.to_string()))?;
        }
        let total = |l: usize| (l + lang.output_length(l)) as u128;
        let tokens = self.train_examples as u128 * total(self.train_max_length)
            + self.test_lengths().map(|l| self.test_examples as u128 * total(l)).sum::<u128>();
        if tokens > MAX_TOKENS {
            return Err((
                "train_examples",
                format!("the splits hold {tokens} tokens, above {MAX_TOKENS}: fewer examples or lengths"),
            ));
        }
        Ok(())
    }

    pub fn test_lengths(&self) -> impl Iterator<Item = usize> {
        (self.test_min_length..=self.test_max_length).step_by(self.test_length_step.max(1))
    }
}

/// A configured task: what to sample and how to encode it.
struct Sampler {
    lang: Language,
    modulus: i64,
    vocab: i64,
    group: Option<Group>,
}

impl Sampler {
    fn new(lang: Language, cfg: &FormalConfig) -> anyhow::Result<Self> {
        let group = cfg.group.as_deref().map(Group::parse).transpose()?;
        Ok(Sampler { lang, modulus: cfg.modulus.unwrap_or(5), vocab: cfg.vocab_size.unwrap_or(2), group })
    }

    /// Input alphabet (the paper's `input_size`).
    fn input_size(&self) -> i64 {
        use Language::*;
        match self.lang {
            EvenPairs | ParityCheck | ComputeSqrt => 2,
            CycleNavigation | BinaryAddition | BinaryMultiplication => 3,
            ModularArithmetic => self.modulus + regular::ARITHMETIC_OPERATORS,
            ModularArithmeticBrackets | SolveEquation => self.modulus + 6,
            StackManipulation => 5,
            MissingDuplicateString => 4,
            ReverseString | DuplicateString | OddsFirst | BucketSort => self.vocab,
            StateTracking => self.group_order(),
        }
    }

    /// Output classes (the paper's `output_size`).
    fn output_size(&self) -> i64 {
        use Language::*;
        match self.lang {
            EvenPairs | ParityCheck | ComputeSqrt | MissingDuplicateString => 2,
            CycleNavigation => regular::CYCLE,
            StackManipulation | BinaryAddition | BinaryMultiplication => 3,
            ModularArithmetic | ModularArithmeticBrackets | SolveEquation => self.modulus,
            ReverseString | DuplicateString | OddsFirst | BucketSort => self.vocab,
            StateTracking => self.group_order(),
        }
    }

    fn group_order(&self) -> i64 {
        self.group.as_ref().map_or(0, |g| g.order() as i64)
    }

    /// The query token after the input (the paper's empty output token) and the padding token.
    fn query_token(&self) -> i64 {
        self.input_size()
    }

    fn pad_token(&self) -> i64 {
        self.input_size() + i64::from(self.lang != Language::StateTracking)
    }

    fn io(&self, max_length: usize) -> TaskIo {
        let input = self.lang.input_length(max_length);
        let seq_len = (input + self.lang.output_length(input)) as i64;
        TaskIo::per_token(self.pad_token() + 1, self.output_size(), seq_len, true)
    }

    fn sample(&self, rng: &mut SplitMix64, length: usize) -> Example {
        use Language::*;
        match self.lang {
            EvenPairs => regular::even_pairs(rng, length),
            ModularArithmetic => regular::modular_arithmetic(rng, length, self.modulus),
            ParityCheck => regular::parity_check(rng, length),
            CycleNavigation => regular::cycle_navigation(rng, length),
            StackManipulation => dcf::stack_manipulation(rng, length),
            ReverseString => dcf::reverse_string(rng, length, self.vocab),
            ModularArithmeticBrackets => dcf::modular_arithmetic_brackets(rng, length, self.modulus),
            SolveEquation => dcf::solve_equation(rng, length, self.modulus),
            DuplicateString => cs::duplicate_string(rng, length, self.vocab),
            MissingDuplicateString => cs::missing_duplicate_string(rng, length),
            OddsFirst => cs::odds_first(rng, length, self.vocab),
            BinaryAddition => cs::binary_addition(rng, length),
            BinaryMultiplication => cs::binary_multiplication(rng, length),
            ComputeSqrt => cs::compute_sqrt(rng, length),
            BucketSort => cs::bucket_sort(rng, length, self.vocab),
            StateTracking => {
                let group = self.group.as_ref().expect("state_tracking has a group");
                let input = regular::uniform(rng, length, group.order() as i64);
                let mut state = 0;
                let output = input
                    .iter()
                    .map(|&g| {
                        state = group.multiply(state, g as usize);
                        state as i64
                    })
                    .collect();
                Example::sequence(input, output)
            }
        }
    }

    /// (inputs, targets) of one example as the model sees it, before padding.
    fn encode(&self, example: &Example) -> (Vec<i64>, Vec<i64>) {
        let mut targets: Vec<i64> =
            example.output.iter().enumerate().map(|(i, &y)| if i < example.scored { y } else { IGNORE }).collect();
        if self.lang == Language::StateTracking {
            return (example.input.clone(), targets);
        }
        let mut inputs = example.input.clone();
        inputs.extend(std::iter::repeat_n(self.query_token(), example.output.len()));
        let mut padded = vec![IGNORE; example.input.len()];
        padded.append(&mut targets);
        (inputs, padded)
    }

    /// `n` examples, each of a length drawn by `length`, right-padded to the longest.
    fn split(&self, n: usize, seed: u64, mut length: impl FnMut(&mut SplitMix64) -> usize) -> TokenSplit {
        let mut rng = SplitMix64::new(seed);
        let encoded: Vec<(Vec<i64>, Vec<i64>)> = (0..n)
            .map(|_| {
                let l = length(&mut rng);
                self.encode(&self.sample(&mut rng, l))
            })
            .collect();
        let width = encoded.iter().map(|(x, _)| x.len()).max().unwrap_or(1).max(1);
        let (mut inputs, mut targets) = (Vec::with_capacity(n * width), Vec::with_capacity(n * width));
        for (mut x, mut y) in encoded {
            x.resize(width, self.pad_token());
            y.resize(width, IGNORE);
            inputs.append(&mut x);
            targets.append(&mut y);
        }
        TokenSplit::per_token(inputs, targets, n, width)
    }
}

fn parse(lang: Language, params: &serde_json::Value) -> anyhow::Result<(FormalConfig, Sampler)> {
    let cfg: FormalConfig = serde_json::from_value(params.clone())?;
    let sampler = Sampler::new(lang, &cfg)?;
    Ok((cfg, sampler))
}

fn resolve(lang: Language, combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    let cfg: FormalConfig = crate::params::resolve(combo)?;
    let cfg = cfg.complete(lang).map_err(|(k, m)| ParamError::new(k, m))?;
    serde_json::to_value(&cfg).map_err(|e| ParamError::new("", e.to_string()))
}

fn io(lang: Language, params: &serde_json::Value) -> anyhow::Result<TaskIo> {
    let (cfg, sampler) = parse(lang, params)?;
    Ok(sampler.io(cfg.train_max_length))
}

/// Train, in-distribution test and one split per evaluated length, from distinct streams of
/// the data seed.
pub fn build(lang: Language, params: &serde_json::Value, ctx: BuildContext) -> anyhow::Result<TaskData> {
    let (cfg, sampler) = parse(lang, params)?;
    let seed = cfg.data_seed.unwrap_or(ctx.seed).wrapping_mul(2);
    let (lo, hi) = (cfg.train_min_length as i64, cfg.train_max_length as i64 + 1);
    let train_length = |rng: &mut SplitMix64| rng.range(lo, hi) as usize;
    let train = sampler.split(cfg.train_examples, seed, train_length);
    let test = sampler.split(cfg.test_examples, seed + 1, train_length);
    let evals = cfg
        .test_lengths()
        .map(|l| {
            let stream = seed ^ ((l as u64 + 1) << 40);
            (format!("len={l}"), sampler.split(cfg.test_examples, stream, |_| l))
        })
        .collect();
    Ok(TaskData { train, val: None, test, evals, io: sampler.io(cfg.train_max_length), lr_override: None, lm: None })
}

macro_rules! info {
    ($lang:expr) => {
        TaskInfo {
            facts: *$lang.facts(),
            resolve: |p| resolve($lang, p),
            io: |p| io($lang, p),
            build: |p, ctx| build($lang, p, ctx).map(crate::tasks::Data::Tokens),
        }
    };
}

pub const INFOS: [TaskInfo; 16] = [
    info!(Language::EvenPairs),
    info!(Language::ModularArithmetic),
    info!(Language::ParityCheck),
    info!(Language::CycleNavigation),
    info!(Language::StackManipulation),
    info!(Language::ReverseString),
    info!(Language::ModularArithmeticBrackets),
    info!(Language::SolveEquation),
    info!(Language::DuplicateString),
    info!(Language::MissingDuplicateString),
    info!(Language::OddsFirst),
    info!(Language::BinaryAddition),
    info!(Language::BinaryMultiplication),
    info!(Language::ComputeSqrt),
    info!(Language::BucketSort),
    info!(Language::StateTracking),
];
