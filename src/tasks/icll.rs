//! In-context language learning (Akyürek et al. 2024, "In-Context Language Learning:
//! Architectures and Algorithms", RegBench): every example is a handful of strings sampled from
//! its own random finite automaton, separated by `|`; the model must infer the language from
//! the strings before it and predict the next symbol. The automata of the test and validation
//! splits are not among the training ones, so memorising languages does not help.
//!
//! As the authors' data module (berlino/seq_icl, `src/dataloaders/dfa.py`): a DFA has 4..=12
//! states (`max_outgoing_edges..=max_num_nodes`), an alphabet of 4..=18 of the 18 letters, and
//! from each state 1..=3 transitions on distinct letters to distinct other states; every state
//! accepts. A string takes 1..=49 steps, a uniformly random transition at each; an example holds
//! 10..=19 strings. The separator is never a target. Accuracy is theirs: a prediction is right
//! when the automaton accepts it after the current string's prefix (any valid next letter), so
//! each target position carries the mask of its valid letters (`TokenSplit::accepted`).
//!
//! Deviations, each without effect on the data's distribution: automata are deduplicated by
//! their minimal form (the authors hash the minimised transition table under its state names, so
//! two names of one language could both appear, once in training and once in test); sampling
//! walks the unminimised automaton (equivalent states offer the same letters to equivalent
//! successors, so the strings have the same distribution); token ids are letters 0..=17,
//! separator 18, padding 19 (theirs sort `.`, letters, `|`); a split is padded to its longest
//! example, not each batch to its own.
use super::{BuildContext, Data, TaskData, TaskInfo, TokenSplit, IGNORE};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcllConfig {
    /// Training examples, one automaton each.
    pub num_examples: usize,
    /// Held-out automata: half for the test split, half for validation.
    pub num_test_examples: usize,
    /// Letters plus the two special tokens (separator, padding).
    pub vocab_size: i64,
    pub max_num_nodes: i64,
    /// Strings per example: `min..max` (the upper bound excluded, as numpy's `integers`).
    pub min_num_in_context_examples: i64,
    pub max_num_in_context_examples: i64,
    /// Transitions per state: `1..max_outgoing_edges`; also the fewest states and letters.
    pub max_outgoing_edges: i64,
    /// Steps per string: `1..max_len_per_example`.
    pub max_len_per_example: i64,
    pub data_seed: Option<u64>,
}

impl Default for IcllConfig {
    fn default() -> Self {
        IcllConfig {
            num_examples: 5000,
            num_test_examples: 500,
            vocab_size: 20,
            max_num_nodes: 12,
            min_num_in_context_examples: 10,
            max_num_in_context_examples: 20,
            max_outgoing_edges: 4,
            max_len_per_example: 50,
            data_seed: None,
        }
    }
}

impl IcllConfig {
    fn letters(&self) -> usize {
        (self.vocab_size - 2) as usize
    }

    fn separator(&self) -> i64 {
        self.vocab_size - 2
    }

    fn pad(&self) -> i64 {
        self.vocab_size - 1
    }

    /// The longest input: the most strings at the longest length with their separators, less
    /// the last token (inputs and targets are the sequence shifted by one).
    pub fn max_input_length(&self) -> usize {
        let strings = (self.max_num_in_context_examples - 1) as usize;
        strings * (self.max_len_per_example - 1) as usize + strings - 2
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(6..=64).contains(&self.vocab_size) {
            return Err((
                "vocab_size",
                format!("must be in 6..=64 (letters, separator and padding), got {}", self.vocab_size),
            ));
        }
        if self.max_outgoing_edges < 2 || self.max_outgoing_edges as usize > self.letters() {
            return Err((
                "max_outgoing_edges",
                format!(
                    "must be in 2..={} (states draw 1..max_outgoing_edges transitions on distinct letters), got {}",
                    self.letters(),
                    self.max_outgoing_edges
                ),
            ));
        }
        if !(self.max_outgoing_edges..=64).contains(&self.max_num_nodes) {
            return Err((
                "max_num_nodes",
                format!(
                    "must be in {}..=64 (at least max_outgoing_edges), got {}",
                    self.max_outgoing_edges, self.max_num_nodes
                ),
            ));
        }
        if self.min_num_in_context_examples < 2 {
            return Err((
                "min_num_in_context_examples",
                format!("must be at least 2, got {}", self.min_num_in_context_examples),
            ));
        }
        if self.max_num_in_context_examples <= self.min_num_in_context_examples {
            return Err((
                "max_num_in_context_examples",
                format!(
                    "must exceed min_num_in_context_examples ({}; the upper bound is excluded), got {}",
                    self.min_num_in_context_examples, self.max_num_in_context_examples
                ),
            ));
        }
        if self.max_len_per_example < 2 {
            return Err((
                "max_len_per_example",
                format!(
                    "must be at least 2 (strings take 1..max_len_per_example steps), got {}",
                    self.max_len_per_example
                ),
            ));
        }
        if self.num_examples == 0 {
            return Err(("num_examples", "must be at least 1".into()));
        }
        if self.num_test_examples < 2 {
            return Err((
                "num_test_examples",
                format!("must be at least 2 (half test, half validation), got {}", self.num_test_examples),
            ));
        }
        let tokens = (self.num_examples + self.num_test_examples) as u128 * self.max_input_length() as u128;
        if tokens > 2_000_000_000 {
            return Err(("num_examples", format!("the splits would hold up to {tokens} tokens, above 2000000000")));
        }
        Ok(())
    }

    fn io(&self) -> TaskIo {
        TaskIo::per_token(self.vocab_size, self.vocab_size, self.max_input_length() as i64, true)
    }
}

/// A deterministic automaton whose states all accept; state 0 is the initial one. Each state's
/// transitions are (letter, next state), sorted by letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dfa {
    pub transitions: Vec<Vec<(u8, usize)>>,
}

impl Dfa {
    /// A random automaton as `RandomDFASampler` draws one, with its state and alphabet sizes
    /// drawn as `ICLDFADataModule.setup` does.
    pub fn random(rng: &mut SplitMix64, cfg: &IcllConfig) -> Dfa {
        let max_out = cfg.max_outgoing_edges;
        let states = rng.range(max_out, cfg.max_num_nodes + 1) as usize;
        let alphabet_size = rng.range(max_out, cfg.letters() as i64 + 1) as usize;
        let letters: Vec<u8> = (0..cfg.letters() as u8).collect();
        let alphabet = rng.choose_distinct(&letters, alphabet_size);
        let transitions = (0..states)
            .map(|state| {
                let k = rng.range(1, max_out) as usize;
                let symbols = rng.choose_distinct(&alphabet, k);
                let others: Vec<usize> = (0..states).filter(|&s| s != state).collect();
                let targets = rng.choose_distinct(&others, k);
                let mut out: Vec<(u8, usize)> = symbols.into_iter().zip(targets).collect();
                out.sort_unstable();
                out
            })
            .collect();
        Dfa { transitions }
    }

    pub fn next(&self, state: usize, letter: u8) -> Option<usize> {
        self.transitions[state].iter().find(|(l, _)| *l == letter).map(|&(_, s)| s)
    }

    /// The letters accepted from `state`, as a bitmask.
    pub fn accepted(&self, state: usize) -> u64 {
        self.transitions[state].iter().fold(0, |mask, &(l, _)| mask | 1 << l)
    }

    /// A string of `length` steps, each a uniformly random transition.
    pub fn sample(&self, rng: &mut SplitMix64, length: usize) -> Vec<u8> {
        let mut state = 0;
        (0..length)
            .map(|_| {
                let out = &self.transitions[state];
                let (letter, next) = out[rng.below(out.len() as u64) as usize];
                state = next;
                letter
            })
            .collect()
    }

    /// The minimal automaton of the same language, its states numbered in breadth-first order
    /// from the initial state (letters in order): two automata accept the same language exactly
    /// when their canonical forms are equal. Unreachable states go; states are merged by Moore's
    /// partition refinement (all states accept, so a missing transition is what tells them apart).
    pub fn canonical(&self) -> Dfa {
        let n = self.transitions.len();
        let mut class = vec![0usize; n];
        loop {
            let mut ids: BTreeMap<(usize, Vec<(u8, usize)>), usize> = BTreeMap::new();
            let signatures: Vec<_> = (0..n)
                .map(|s| (class[s], self.transitions[s].iter().map(|&(l, t)| (l, class[t])).collect::<Vec<_>>()))
                .collect();
            for sig in &signatures {
                let next = ids.len();
                ids.entry(sig.clone()).or_insert(next);
            }
            let refined: Vec<usize> = signatures.iter().map(|sig| ids[sig]).collect();
            let before = class.iter().collect::<HashSet<_>>().len();
            class = refined;
            if ids.len() == before {
                break;
            }
        }
        // Breadth-first numbering of the classes reachable from the initial state.
        let mut number: BTreeMap<usize, usize> = BTreeMap::from([(class[0], 0)]);
        let mut order = vec![0usize]; // a representative state per canonical state
        let mut transitions = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let out = self.transitions[order[i]]
                .iter()
                .map(|&(l, t)| {
                    let next = number.len();
                    let id = *number.entry(class[t]).or_insert_with(|| {
                        order.push(t);
                        next
                    });
                    (l, id)
                })
                .collect();
            transitions.push(out);
            i += 1;
        }
        Dfa { transitions }
    }
}

/// One example: its strings joined by the separator, shifted into inputs and targets, with the
/// letters valid at each target position.
pub struct Example {
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
    pub accepted: Vec<u64>,
}

pub fn example(dfa: &Dfa, rng: &mut SplitMix64, cfg: &IcllConfig) -> Example {
    let strings = rng.range(cfg.min_num_in_context_examples, cfg.max_num_in_context_examples);
    let mut tokens: Vec<i64> = Vec::new();
    for i in 0..strings {
        if i > 0 {
            tokens.push(cfg.separator());
        }
        let length = rng.range(1, cfg.max_len_per_example) as usize;
        tokens.extend(dfa.sample(rng, length).into_iter().map(i64::from));
    }
    let (mut targets, mut accepted) = (Vec::with_capacity(tokens.len()), Vec::with_capacity(tokens.len()));
    let mut state = 0;
    for pair in tokens.windows(2) {
        let (input, target) = (pair[0], pair[1]);
        state = if input == cfg.separator() { 0 } else { dfa.next(state, input as u8).expect("a sampled string") };
        let scored = target != cfg.separator();
        targets.push(if scored { target } else { IGNORE });
        accepted.push(if scored { dfa.accepted(state) } else { 0 });
    }
    tokens.pop();
    Example { inputs: tokens, targets, accepted }
}

/// `count` automata with pairwise different languages, or an error naming what to change.
pub fn distinct_automata(rng: &mut SplitMix64, cfg: &IcllConfig, count: usize) -> anyhow::Result<Vec<Dfa>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(count);
    // The authors' bound: ten draws per wanted automaton.
    for _ in 0..count.saturating_mul(10) {
        let dfa = Dfa::random(rng, cfg);
        if seen.insert(dfa.canonical()) {
            out.push(dfa);
            if out.len() == count {
                return Ok(out);
            }
        }
    }
    anyhow::bail!(
        "num_examples + num_test_examples: only {} distinct automata in {} draws, {count} wanted; \
         ask for fewer examples or allow larger automata (max_num_nodes, vocab_size)",
        out.len(),
        count.saturating_mul(10)
    )
}

/// One example per automaton, right-padded to the longest.
pub fn split(dfas: &[Dfa], rng: &mut SplitMix64, cfg: &IcllConfig) -> TokenSplit {
    let examples: Vec<Example> = dfas.iter().map(|d| example(d, rng, cfg)).collect();
    let width = examples.iter().map(|e| e.inputs.len()).max().unwrap_or(1);
    let (mut inputs, mut targets, mut accepted) = (Vec::new(), Vec::new(), Vec::new());
    for e in examples {
        let pad = width - e.inputs.len();
        inputs.extend(e.inputs.into_iter().chain(std::iter::repeat_n(cfg.pad(), pad)));
        targets.extend(e.targets.into_iter().chain(std::iter::repeat_n(IGNORE, pad)));
        accepted.extend(e.accepted.into_iter().chain(std::iter::repeat_n(0, pad)));
    }
    let mut split = TokenSplit::per_token(inputs, targets, dfas.len(), width);
    split.accepted = Some(accepted);
    split
}

fn build(params: &serde_json::Value, ctx: BuildContext) -> anyhow::Result<TaskData> {
    let cfg: IcllConfig = serde_json::from_value(params.clone())?;
    let mut rng = SplitMix64::new(cfg.data_seed.unwrap_or(ctx.seed) ^ 0x1C11_DFA0);
    let mut dfas = distinct_automata(&mut rng, &cfg, cfg.num_examples + cfg.num_test_examples)?;
    rng.shuffle(&mut dfas);
    let held_out = dfas.split_off(cfg.num_examples);
    let (test, val) = held_out.split_at(cfg.num_test_examples / 2);
    Ok(TaskData {
        train: split(&dfas, &mut rng, &cfg),
        val: Some(split(val, &mut rng, &cfg)),
        test: split(test, &mut rng, &cfg),
        evals: Vec::new(),
        io: cfg.io(),
        lr_override: None,
        lm: None,
    })
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    super::resolve_validated(combo, IcllConfig::validate)
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::ICLL,
    resolve,
    io: |p| Ok(serde_json::from_value::<IcllConfig>(p.clone())?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};
