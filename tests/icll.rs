//! In-context language learning: the automata are drawn as the authors draw them, minimal forms
//! identify languages, every string is one the automaton accepts, and the scored accuracy equals
//! the authors' own metric (berlino/seq_icl `train.py::_get_dfa_accuracy`, transcribed below on
//! strings) for arbitrary predictions.
use seqbench::params::ParamMap;
use seqbench::rng::SplitMix64;
use seqbench::tasks::icll::{distinct_automata, example, split, Dfa, IcllConfig};
use seqbench::tasks::{find, BuildContext, IGNORE};
use tch::Tensor;

fn letter(id: i64, cfg: &IcllConfig) -> String {
    match id {
        _ if id == cfg.vocab_size - 2 => "|".into(),
        _ if id == cfg.vocab_size - 1 => ".".into(),
        _ => ((b'a' + id as u8) as char).to_string(),
    }
}

/// `DFA.__call__`: walks the space-separated symbols; any missing transition rejects.
fn accepts(dfa: &Dfa, word: &str) -> bool {
    let mut state = 0;
    for symbol in word.split(' ') {
        let c = symbol.as_bytes()[0];
        if symbol.len() != 1 || !c.is_ascii_lowercase() {
            return false;
        }
        match dfa.next(state, c - b'a') {
            Some(s) => state = s,
            None => return false,
        }
    }
    true
}

/// `_get_dfa_accuracy` for one example: (correct, total).
fn their_accuracy(dfa: &Dfa, inputs: &[i64], preds: &[i64], cfg: &IcllConfig) -> (usize, usize) {
    let input_chars: Vec<String> = inputs.iter().map(|&t| letter(t, cfg)).filter(|c| c != ".").collect();
    let pred_chars: Vec<String> = preds.iter().map(|&t| letter(t, cfg)).collect();
    let (mut correct, mut total) = (0, 0);
    for t in 0..input_chars.len() {
        if input_chars.len() > t + 1 {
            if input_chars[t + 1] == "|" {
                continue;
            }
            if input_chars[t + 1] == "." {
                break;
            }
        }
        let mut current: Vec<String> = input_chars[..=t].to_vec();
        current.push(pred_chars[t].clone());
        let joined = current.join(" ");
        let word = joined.split(" | ").last().unwrap();
        if !word.is_empty() {
            total += 1;
            correct += accepts(dfa, word) as usize;
        }
    }
    (correct, total)
}

fn small() -> IcllConfig {
    IcllConfig {
        num_examples: 40,
        num_test_examples: 10,
        min_num_in_context_examples: 3,
        max_num_in_context_examples: 6,
        max_len_per_example: 8,
        ..Default::default()
    }
}

#[test]
fn automata_are_drawn_as_the_authors_draw_them() {
    let cfg = IcllConfig::default();
    let mut rng = SplitMix64::new(3);
    let mut sizes = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let dfa = Dfa::random(&mut rng, &cfg);
        let n = dfa.transitions.len();
        sizes.insert(n);
        let alphabet: std::collections::BTreeSet<u8> = dfa.transitions.iter().flatten().map(|&(l, _)| l).collect();
        assert!(alphabet.len() <= 18 && alphabet.iter().all(|&l| l < 18));
        for (state, out) in dfa.transitions.iter().enumerate() {
            assert!((1..=3).contains(&out.len()), "1..max_outgoing_edges transitions: {out:?}");
            let letters: std::collections::BTreeSet<u8> = out.iter().map(|&(l, _)| l).collect();
            let targets: std::collections::BTreeSet<usize> = out.iter().map(|&(_, t)| t).collect();
            assert_eq!(letters.len(), out.len(), "distinct letters");
            assert_eq!(targets.len(), out.len(), "distinct targets");
            assert!(!targets.contains(&state), "no self-loops");
            assert!(targets.iter().all(|&t| t < n));
        }
    }
    assert_eq!(sizes, (4..=12).collect(), "4..=max_num_nodes states");
}

#[test]
fn minimal_forms_identify_languages() {
    // 0 -a-> 1, 0 -b-> 2; 1 and 2 both -c-> 0: one language as 0 -a,b-> 1 -c-> 0. State 3 is
    // unreachable.
    let dfa = Dfa { transitions: vec![vec![(0, 1), (1, 2)], vec![(2, 0)], vec![(2, 0)], vec![(0, 0)]] };
    let minimal = Dfa { transitions: vec![vec![(0, 1), (1, 1)], vec![(2, 0)]] };
    assert_eq!(dfa.canonical(), minimal);
    // The same automaton under other state names.
    let renamed = Dfa { transitions: vec![vec![(0, 2), (1, 1)], vec![(2, 0)], vec![(2, 0)]] };
    assert_eq!(renamed.canonical(), minimal);
    // One letter less from state 2: another language.
    let other = Dfa { transitions: vec![vec![(0, 1), (1, 2)], vec![(2, 0)], vec![(3, 0)]] };
    assert_ne!(other.canonical(), minimal);
    // A chain that only the whole walk tells apart stays whole: a -> b -> a -> (c) vs a -> b -> a.
    let chain = Dfa { transitions: vec![vec![(0, 1)], vec![(1, 2)], vec![(0, 3)], vec![(2, 0)]] };
    assert_eq!(chain.canonical().transitions.len(), 4);
    // Random automata: the minimal form accepts the same strings.
    let cfg = IcllConfig::default();
    let mut rng = SplitMix64::new(9);
    for _ in 0..200 {
        let dfa = Dfa::random(&mut rng, &cfg);
        let min = dfa.canonical();
        assert!(min.transitions.len() <= dfa.transitions.len());
        assert_eq!(min.canonical(), min, "the canonical form is a fixed point");
        for _ in 0..20 {
            let word = dfa.sample(&mut rng, 12);
            let text: Vec<String> = word.iter().map(|&l| ((b'a' + l) as char).to_string()).collect();
            assert!(accepts(&min, &text.join(" ")));
        }
    }
}

#[test]
fn strings_are_accepted_and_separators_are_never_targets() {
    let cfg = small();
    let mut rng = SplitMix64::new(1);
    let dfas = distinct_automata(&mut rng, &cfg, 30).unwrap();
    let canon: std::collections::HashSet<Dfa> = dfas.iter().map(Dfa::canonical).collect();
    assert_eq!(canon.len(), 30, "pairwise different languages");
    for dfa in &dfas {
        let e = example(dfa, &mut rng, &cfg);
        let mut tokens = e.inputs.clone();
        tokens.push(*e.targets.last().unwrap());
        let text: Vec<String> = tokens.iter().map(|&t| letter(t, &cfg)).collect();
        let strings: Vec<&str> = text.join(" ").leak().split(" | ").collect();
        assert!((3..6).contains(&strings.len()), "{strings:?}");
        for s in &strings {
            assert!(accepts(dfa, s), "{s}");
            assert!((1..8).contains(&s.split(' ').count()));
        }
        for (t, (&target, &mask)) in e.targets.iter().zip(&e.accepted).enumerate() {
            if tokens[t + 1] == cfg.vocab_size - 2 {
                assert_eq!((target, mask), (IGNORE, 0));
            } else {
                assert_eq!(target, tokens[t + 1]);
                assert!(mask >> target & 1 == 1, "the true next letter is valid");
            }
        }
    }
}

#[test]
fn scored_accuracy_is_the_authors_metric() {
    let cfg = small();
    let mut rng = SplitMix64::new(4);
    let dfas = distinct_automata(&mut rng, &cfg, 25).unwrap();
    let data = split(&dfas, &mut rng, &cfg);
    let idx: Vec<usize> = (0..data.n).collect();
    let (width, n) = (data.seq_len, data.n);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for &i in &idx {
        data.extend_example(i, &mut x, &mut y);
    }
    // Predictions: half the time the true next token, else any token (letters, separator, pad).
    let preds: Vec<i64> =
        y.iter().map(|&t| if t != IGNORE && rng.below(2) == 0 { t } else { rng.range(0, cfg.vocab_size) }).collect();
    let targets = Tensor::from_slice(&y).view([n as i64, width as i64]);
    let hits = data.hits(&Tensor::from_slice(&preds).view([n as i64, width as i64]), &targets, &idx);
    let hits = hits.logical_and(&targets.ne(IGNORE));
    let ours = (hits.sum(tch::Kind::Int64).int64_value(&[]), targets.ne(IGNORE).sum(tch::Kind::Int64).int64_value(&[]));
    let (mut correct, mut total) = (0, 0);
    for (i, dfa) in dfas.iter().enumerate() {
        let (c, t) = their_accuracy(dfa, &x[i * width..(i + 1) * width], &preds[i * width..(i + 1) * width], &cfg);
        correct += c;
        total += t;
    }
    assert_eq!(ours, (correct as i64, total as i64));
    assert!(correct > total / 2 && correct < total, "{correct}/{total}: predictions both right and wrong");
}

#[test]
fn the_task_builds_disjoint_splits_and_refuses_bad_settings() {
    let info = find("icll").unwrap();
    let combo = |pairs: &[(&str, i64)]| -> ParamMap {
        pairs.iter().map(|(k, v)| (k.to_string(), serde_yaml::Value::from(*v))).collect()
    };
    let small = combo(&[
        ("num_examples", 60),
        ("num_test_examples", 20),
        ("min_num_in_context_examples", 3),
        ("max_num_in_context_examples", 5),
        ("max_len_per_example", 6),
    ]);
    let resolved = (info.resolve)(&small).unwrap();
    let data = info.build_tokens(&resolved, BuildContext::seed(2)).unwrap();
    assert_eq!((data.train.n, data.test.n, data.val.as_ref().unwrap().n), (60, 10, 10));
    assert!(data.train.seq_len <= data.io.seq_len as usize);
    assert_eq!(data.io.seq_len, 4 * 5 + 4 - 2);
    let err = (info.resolve)(&combo(&[("max_outgoing_edges", 1)])).unwrap_err();
    assert!(format!("{err:?}").contains("max_outgoing_edges"), "{err:?}");
    let err = (info.resolve)(&combo(&[("min_num_in_context_examples", 20), ("max_num_in_context_examples", 20)]))
        .unwrap_err();
    assert!(format!("{err:?}").contains("must exceed"), "{err:?}");
    // Too few automata to draw from: three states, four letters.
    let tiny = combo(&[("vocab_size", 6), ("max_num_nodes", 2), ("max_outgoing_edges", 2), ("num_examples", 500)]);
    let resolved = (info.resolve)(&tiny).unwrap();
    let err = info.build_tokens(&resolved, BuildContext::seed(2)).err().unwrap().to_string();
    assert!(err.contains("distinct automata"), "{err}");
}
