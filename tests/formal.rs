//! The formal-language and state-tracking generators, read back from the token splits the model
//! sees and checked by evaluators written here from the task definitions (Delétang et al. 2023;
//! Merrill et al. 2024), not from the generators: a misunderstanding of a task shows up as a
//! disagreement.
use seqbench::params::ParamMap;
use seqbench::tasks::{find, BuildContext, TaskData, TokenSplit, IGNORE};
use std::collections::BTreeMap;

const TASKS: [&str; 16] = [
    "even_pairs",
    "modular_arithmetic",
    "parity_check",
    "cycle_navigation",
    "stack_manipulation",
    "reverse_string",
    "modular_arithmetic_brackets",
    "solve_equation",
    "duplicate_string",
    "missing_duplicate_string",
    "odds_first",
    "binary_addition",
    "binary_multiplication",
    "compute_sqrt",
    "bucket_sort",
    "state_tracking",
];

fn params(pairs: &[(&str, serde_yaml::Value)]) -> ParamMap {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn small(extra: &[(&str, serde_yaml::Value)]) -> ParamMap {
    let mut p = params(&[
        ("train_max_length", 12.into()),
        ("test_min_length", 13.into()),
        ("test_max_length", 73.into()),
        ("test_length_step", 60.into()),
        ("train_examples", 300.into()),
        ("test_examples", 40.into()),
    ]);
    p.extend(params(extra));
    p
}

fn build(task: &str, combo: &ParamMap, seed: u64) -> (serde_json::Value, TaskData) {
    let info = find(task).unwrap_or_else(|| panic!("{task} registered"));
    let resolved = (info.resolve)(combo).unwrap_or_else(|e| panic!("{task}: {e:?}"));
    let data = info.build_tokens(&resolved, BuildContext::seed(seed)).expect("builds");
    (resolved, data)
}

// ---- little-endian binary arithmetic, written for the evaluator ----

fn trim(mut bits: Vec<i64>) -> Vec<i64> {
    while bits.len() > 1 && *bits.last().unwrap() == 0 {
        bits.pop();
    }
    if bits.is_empty() {
        bits.push(0);
    }
    bits
}

fn add(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut out = Vec::new();
    let mut carry = 0;
    for i in 0..a.len().max(b.len()) {
        let s = a.get(i).unwrap_or(&0) + b.get(i).unwrap_or(&0) + carry;
        out.push(s % 2);
        carry = s / 2;
    }
    out.push(carry);
    trim(out)
}

fn mul(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut acc = vec![0];
    for (shift, &bit) in b.iter().enumerate() {
        if bit == 1 {
            let shifted: Vec<i64> = std::iter::repeat_n(0, shift).chain(a.iter().copied()).collect();
            acc = add(&acc, &shifted);
        }
    }
    trim(acc)
}

/// a ≤ b for little-endian numbers.
fn le(a: &[i64], b: &[i64]) -> bool {
    let (a, b) = (trim(a.to_vec()), trim(b.to_vec()));
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    a.iter().rev().cmp(b.iter().rev()) != std::cmp::Ordering::Greater
}

// ---- bracketed modular expressions: a recursive-descent reader ----

struct Reader<'a> {
    tokens: &'a [i64],
    at: usize,
    m: i64,
    /// Token ids of + - * ( ).
    ids: [i64; 5],
}

impl Reader<'_> {
    fn next(&mut self) -> i64 {
        self.at += 1;
        self.tokens[self.at - 1]
    }

    /// atom := digit | '-' digit | '(' atom [op atom] ')'
    fn atom(&mut self) -> i64 {
        let [plus, minus, times, open, close] = self.ids;
        let t = self.next();
        if t < self.m {
            return t;
        }
        if t == minus {
            let d = self.next();
            assert!(d < self.m, "unary minus takes a digit");
            return (-d).rem_euclid(self.m);
        }
        assert_eq!(t, open, "an atom starts with a digit, - or (");
        let left = self.atom();
        let op = self.next();
        if op == close {
            return left;
        }
        let right = self.atom();
        assert_eq!(self.next(), close, "a binary operation is closed");
        let value = match op {
            o if o == plus => left + right,
            o if o == minus => left - right,
            o if o == times => left * right,
            other => panic!("unknown operator {other}"),
        };
        value.rem_euclid(self.m)
    }
}

// ---- the evaluators: task, input → (full output, scored outputs) ----

fn group_elements(name: &str) -> Vec<Vec<usize>> {
    fn perms(rest: &[usize]) -> Vec<Vec<usize>> {
        if rest.is_empty() {
            return vec![vec![]];
        }
        let mut all = Vec::new();
        for (i, &first) in rest.iter().enumerate() {
            let others: Vec<usize> = rest.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, &v)| v).collect();
            for mut tail in perms(&others) {
                tail.insert(0, first);
                all.push(tail);
            }
        }
        all
    }
    // Even permutations: n minus the number of cycles is even.
    fn even(p: &[usize]) -> bool {
        let mut seen = vec![false; p.len()];
        let mut cycles = 0;
        for start in 0..p.len() {
            if !seen[start] {
                cycles += 1;
                let mut i = start;
                while !seen[i] {
                    seen[i] = true;
                    i = p[i];
                }
            }
        }
        (p.len() - cycles).is_multiple_of(2)
    }
    let n: usize = name[1..].parse().unwrap();
    match &name[..1] {
        "S" => perms(&(0..n).collect::<Vec<_>>()),
        "A" => perms(&(0..n).collect::<Vec<_>>()).into_iter().filter(|p| even(p)).collect(),
        _ => (0..n).map(|r| (0..n).map(|i| (i + r) % n).collect()).collect(),
    }
}

fn expected(task: &str, cfg: &serde_json::Value, x: &[i64]) -> (Vec<i64>, usize) {
    let m = cfg["modulus"].as_i64().unwrap_or(5);
    let terminated = |mut answer: Vec<i64>, length: usize| {
        let scored = answer.len() + 1;
        answer.push(2);
        answer.resize(length, 0);
        (answer, scored)
    };
    let single = |class: i64| (vec![class], 1);
    let all = |out: Vec<i64>| {
        let n = out.len();
        (out, n)
    };
    let l = x.len();
    match task {
        // An even number of changes between neighbours ⇔ the string ends as it starts.
        "even_pairs" => single(i64::from(x.first() != x.last())),
        "parity_check" => single(x.iter().fold(0, |acc, b| acc ^ b)),
        "cycle_navigation" => single(x.iter().fold(0i64, |pos, mv| (pos + mv + 4) % 5)),
        "modular_arithmetic" => {
            assert_eq!(l % 2, 1, "odd length");
            // Sum of products, each started by the sign before it.
            let (mut total, mut product, mut sign) = (0, x[0], 1);
            for pair in x[1..].chunks(2) {
                match pair[0] - m {
                    2 => product = product * pair[1] % m,
                    op => {
                        total += sign * product;
                        sign = if op == 1 { -1 } else { 1 };
                        product = pair[1];
                    }
                }
            }
            single((total + sign * product).rem_euclid(m))
        }
        "stack_manipulation" => {
            let split = x.iter().position(|&t| t >= 2).unwrap_or(l);
            let mut stack: Vec<i64> = x[..split].to_vec();
            for &action in &x[split..] {
                match action {
                    2 => {
                        stack.pop();
                    }
                    push => stack.push(push - 3),
                }
            }
            terminated(stack.into_iter().rev().collect(), l + 1)
        }
        "reverse_string" => all(x.iter().rev().copied().collect()),
        "modular_arithmetic_brackets" => {
            let mut r = Reader { tokens: x, at: 0, m, ids: [m, m + 1, m + 2, m + 3, m + 4] };
            let v = r.atom();
            assert_eq!(r.at, l, "the expression is the whole input");
            single(v)
        }
        "solve_equation" => {
            if l < 3 {
                return single(0);
            }
            let (unknown, equals) = (m + 4, m + 5);
            assert_eq!(x[l - 2], equals);
            let solutions: Vec<i64> = (0..m)
                .filter(|&d| {
                    let lhs: Vec<i64> = x[..l - 2].iter().map(|&t| if t == unknown { d } else { t }).collect();
                    let mut r = Reader { tokens: &lhs, at: 0, m, ids: [m, m + 1, -1, m + 2, m + 3] };
                    r.atom() == x[l - 1]
                })
                .collect();
            assert_eq!(solutions.len(), 1, "one solution: {x:?}");
            single(solutions[0])
        }
        "duplicate_string" => all([x, x].concat()),
        "missing_duplicate_string" => {
            if l == 1 {
                return single(1);
            }
            let half = l / 2;
            let at = x.iter().position(|&t| t == 2).expect("a missing symbol");
            single(x[(at + half) % (2 * half)])
        }
        "odds_first" => all(x.iter().skip(1).step_by(2).chain(x.iter().step_by(2)).copied().collect()),
        "binary_addition" | "binary_multiplication" => {
            let add_task = task == "binary_addition";
            let length = if add_task { l + 1 } else { l };
            let Some(sep) = x.iter().position(|&t| t == 2) else {
                assert!(l <= 2, "lengths above 2 have two numbers");
                return terminated(if add_task { trim(x.to_vec()) } else { vec![0; l - 1] }, length);
            };
            let (a, b) = (&x[..sep], &x[sep + 1..]);
            assert!(a.contains(&1) && b.contains(&1), "both numbers are non-zero");
            terminated(if add_task { add(a, b) } else { mul(a, b) }, length)
        }
        "compute_sqrt" => {
            let n: Vec<i64> = x.iter().rev().copied().collect();
            assert!(n.contains(&1), "non-zero");
            let root_be = {
                // Read the answer off the bits: the largest r with r² ≤ n, bit by bit.
                let digits = l.div_ceil(2);
                let mut r = vec![0i64; digits];
                for i in (0..digits).rev() {
                    r[i] = 1;
                    if !le(&mul(&r, &r), &n) {
                        r[i] = 0;
                    }
                }
                r.reverse();
                r
            };
            all(root_be)
        }
        "bucket_sort" => {
            let mut counts = BTreeMap::new();
            x.iter().for_each(|&t| *counts.entry(t).or_insert(0) += 1);
            all(counts.into_iter().flat_map(|(t, c)| std::iter::repeat_n(t, c)).collect())
        }
        "state_tracking" => {
            let elements = group_elements(cfg["group"].as_str().unwrap());
            let mut state: Vec<usize> = (0..elements[0].len()).collect();
            all(x
                .iter()
                .map(|&g| {
                    state = state.iter().map(|&i| elements[g as usize][i]).collect();
                    elements.iter().position(|e| *e == state).unwrap() as i64
                })
                .collect())
        }
        other => panic!("no evaluator for {other}"),
    }
}

/// Checks every example of `split`; returns the input lengths seen.
fn check_split(task: &str, cfg: &serde_json::Value, split: &TokenSplit, vocab: i64) -> Vec<usize> {
    let state = task == "state_tracking";
    let (query, pad) = if state { (-1, vocab - 1) } else { (vocab - 2, vocab - 1) };
    let mut lengths = Vec::new();
    for i in 0..split.n {
        let (x, y) = split.example(i);
        let real = x.iter().position(|&t| t == pad).unwrap_or(x.len());
        assert!(
            x[real..].iter().all(|&t| t == pad) && y[real..].iter().all(|&t| t == IGNORE),
            "{task}: padding at the end"
        );
        let input_len = if state { real } else { x.iter().position(|&t| t == query).expect("query tokens") };
        let input = &x[..input_len];
        assert!(
            input.iter().all(|&t| (0..if state { pad } else { query }).contains(&t)),
            "{task}: input tokens {input:?}"
        );
        let (output, scored) = expected(task, cfg, input);
        let answer_at = if state { 0 } else { input_len };
        assert_eq!(real - answer_at, output.len(), "{task}: output length for input {input:?}");
        assert!(y[..answer_at].iter().all(|&t| t == IGNORE), "{task}: no target on the input");
        let labelled: Vec<i64> = y[answer_at..real].iter().copied().take_while(|&t| t != IGNORE).collect();
        assert_eq!(labelled, output[..scored], "{task}: targets for input {input:?}");
        assert!(y[answer_at + scored..real].iter().all(|&t| t == IGNORE), "{task}: nothing scored after the end");
        lengths.push(input_len);
    }
    lengths
}

#[test]
fn every_generator_agrees_with_an_independent_evaluator() {
    for task in TASKS {
        let extra: Vec<(&str, serde_yaml::Value)> = match task {
            "state_tracking" => vec![("group", "A5".into())],
            "bucket_sort" => vec![("vocab_size", 4.into())],
            _ => vec![],
        };
        let (cfg, data) = build(task, &small(&extra), 3);
        let train = check_split(task, &cfg, &data.train, data.io.vocab_size);
        check_split(task, &cfg, &data.test, data.io.vocab_size);
        // Training lengths cover 1..=12 (modular arithmetic keeps them odd).
        let distinct: std::collections::BTreeSet<usize> = train.iter().copied().collect();
        assert!(distinct.len() >= 6 && *distinct.iter().max().unwrap() <= 12, "{task}: {distinct:?}");
        let names: Vec<&str> = data.evals.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["len=13", "len=73"], "{task}");
        for ((_, split), want) in data.evals.iter().zip([13, 73]) {
            let seen = check_split(task, &cfg, split, data.io.vocab_size);
            let want = if task == "modular_arithmetic" && want % 2 == 0 { want - 1 } else { want };
            assert!(seen.iter().all(|&l| l == want), "{task}: eval lengths {seen:?}");
        }
        assert_eq!(
            data.io.seq_len as usize, data.train.seq_len,
            "{task}: the model is built for the longest training example"
        );
    }
}

#[test]
fn every_length_from_one_is_generated_as_the_paper_does() {
    // The paper's samplers have special cases at lengths 1 and 2 (binary arithmetic, stack,
    // missing duplicate, solve_equation): each length 1..=6 on its own.
    for task in TASKS {
        for l in 1..=6 {
            let combo = params(&[
                ("train_min_length", l.into()),
                ("train_max_length", l.into()),
                ("test_min_length", l.into()),
                ("test_max_length", l.into()),
                ("train_examples", 50.into()),
                ("test_examples", 20.into()),
            ]);
            let (cfg, data) = build(task, &combo, 11);
            check_split(task, &cfg, &data.train, data.io.vocab_size);
        }
    }
}

#[test]
fn labels_are_balanced_and_generation_is_deterministic_by_seed() {
    let (_, data) = build("parity_check", &small(&[]), 1);
    let (_, again) = build("parity_check", &small(&[]), 1);
    let (_, other) = build("parity_check", &small(&[]), 2);
    assert_eq!(data.train, again.train);
    assert_ne!(data.train, other.train);
    assert_ne!(data.train, data.test, "train and test come from different streams");
    let labels: Vec<i64> = (0..data.train.n).flat_map(|i| data.train.example(i).1).filter(|&t| t != IGNORE).collect();
    let ones = labels.iter().filter(|&&t| t == 1).count() as f64 / labels.len() as f64;
    assert!((0.4..0.6).contains(&ones), "parity classes balanced: {ones}");
    // A data seed fixes the data whatever the job seed.
    let seeded = small(&[]).into_iter().chain([("data_seed".to_string(), 9.into())]).collect();
    assert_eq!(build("parity_check", &seeded, 1).1.train, build("parity_check", &seeded, 2).1.train);
}

#[test]
fn group_orders_and_defaults() {
    for (group, order) in [("S5", 120), ("A5", 60), ("S4", 24), ("A4", 12), ("Z60", 60), ("S3", 6)] {
        let (cfg, data) = build("state_tracking", &small(&[("group", group.into())]), 0);
        assert_eq!(cfg["group"], group);
        assert_eq!(data.io.num_classes, order, "{group}");
        assert_eq!(data.io.vocab_size, order + 1, "{group}: elements and the pad token");
        assert_eq!(group_elements(group).len(), order as usize);
    }
    let (cfg, _) = build("state_tracking", &small(&[]), 0);
    assert_eq!(cfg["group"], "S5", "the default group");
    let (cfg, data) = build("modular_arithmetic", &small(&[]), 0);
    assert_eq!(cfg["modulus"], 5);
    assert_eq!((data.io.vocab_size, data.io.num_classes), (5 + 4 + 2, 5), "digits, 4 operators, query, pad");
}

#[test]
fn bad_values_are_refused_with_the_key() {
    let refuse = |task: &str, combo: ParamMap, key: &str, words: &str| {
        let err = (find(task).unwrap().resolve)(&combo).expect_err("refused");
        let text = format!("{err:?}");
        assert!(text.contains(key) && text.contains(words), "{task}: {text}");
    };
    refuse("parity_check", params(&[("modulus", 7.into())]), "modulus", "does not apply to task `parity_check`");
    refuse("state_tracking", params(&[("group", "S9".into())]), "group", "S<n> or A<n>");
    refuse("state_tracking", params(&[("group", "Q8".into())]), "group", "such as S5");
    refuse("modular_arithmetic", params(&[("modulus", 11.into())]), "modulus", "2..=10");
    refuse("parity_check", params(&[("train_min_length", 50.into())]), "train_min_length", "train_max_length (40)");
    refuse("parity_check", params(&[("test_length_step", 0.into())]), "test_length_step", "at least 1");
    refuse("duplicate_string", params(&[("train_examples", 100_000_000.into())]), "train_examples", "tokens");
}
