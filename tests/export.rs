//! `seqbench data export` writes generated data (recall, formal, passkey, icll, lm) as CSV
//! that reads back (polars) with the generators' invariants intact.
use polars::prelude::*;
use std::process::Command;

#[test]
fn generated_exports_read_back_with_their_invariants() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("s.yaml");
    std::fs::write(
        &suite,
        "name: s\ndefaults:\n  steps: 1\nmodels:\n  - arch: lstm\ntasks:\n  - { task: selective_copy, vocab_size: 12, context: 30, num_tokens: 5, train_examples: 50, test_examples: 20 }\n  - { task: induction, vocab_size: 20, seq_len: 16, train_examples: 40, test_examples: 10 }\n  - { task: binary_addition, train_max_length: 8, test_min_length: 20, test_max_length: 30, test_length_step: 10, train_examples: 30, test_examples: 5 }\n  - { task: passkey, seq_len: 120, eval_lengths: \"120,160\", eval_depths: \"0,1\", train_examples: 10, test_examples: 4 }\n  - { task: icll, num_examples: 12, num_test_examples: 6, min_num_in_context_examples: 2, max_num_in_context_examples: 4, max_len_per_example: 5 }\n  - { task: lm, corpus: corpus.txt, seq_len: 16, train_windows: 8, eval_windows: 4 }\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("corpus.txt"), "abcdefghijklmnopqrstuvwxyz".repeat(40)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(["data", "export", suite.to_str().unwrap(), "--out", "exported"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &str| -> Vec<(Vec<i64>, Vec<i64>)> {
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(tmp.path().join("exported").join(name)))
            .unwrap()
            .finish()
            .unwrap();
        let ints = |s: &str| s.split(' ').map(|t| t.parse().unwrap()).collect::<Vec<i64>>();
        let col = |c: &str| df.column(c).unwrap().str().unwrap().iter().map(|v| ints(v.unwrap())).collect::<Vec<_>>();
        col("inputs").into_iter().zip(col("targets")).collect()
    };
    let copy = read("selective_copy.test.csv");
    assert_eq!(copy.len(), 20);
    for (x, y) in &copy {
        assert_eq!((x.len(), y.len()), (35, 35));
        let data: Vec<i64> = x[..30].iter().copied().filter(|&t| t != 0).collect();
        assert_eq!(&y[30..], data.as_slice(), "targets are the scattered tokens in order");
    }
    let induction = read("induction.train.csv");
    assert_eq!(induction.len(), 40);
    for (x, y) in &induction {
        let first = x.iter().position(|&t| t == 1).unwrap();
        assert_eq!(y[15], x[first + 1]);
    }
    // Every evaluated length is a file of its own: input, separator, query tokens (id 3) for
    // the L + 1 outputs, answered there.
    for length in [20, 30] {
        let split = read(&format!("binary_addition.len={length}.csv"));
        assert_eq!(split.len(), 5);
        for (x, y) in &split {
            assert_eq!(x.len(), 2 * length + 1);
            assert!(x[length..].iter().all(|&t| t == 3) && x[..length].contains(&2), "{x:?}");
            assert!(y[..length].iter().all(|&t| t == -100) && y[length..].contains(&2), "{y:?}");
        }
    }
    assert_eq!(read("binary_addition.train.csv").len(), 30);
    // Passkey: one file per (length, depth); the answer is the last five bytes, digits.
    for (length, depth) in [(120, 0), (160, 0), (160, 1)] {
        let split = read(&format!("passkey.len={length} depth={depth}.csv"));
        assert_eq!(split.len(), 4);
        for (x, y) in &split {
            assert_eq!(x.len(), length);
            let answer: Vec<i64> = y.iter().copied().filter(|&t| t != -100).collect();
            assert_eq!(answer.len(), 5);
            assert!(answer.iter().all(|t| (b'0' as i64..=b'9' as i64).contains(t)));
            let text = String::from_utf8(x.iter().map(|&b| b as u8).collect()).unwrap();
            let key = String::from_utf8(answer.iter().map(|&b| b as u8).collect()).unwrap();
            assert!(text.contains(&format!("The pass key is {key}. Remember it.")), "{text}");
        }
    }
    // ICLL: held-out automata for test and validation; each scored target is among its
    // accepted letters, and the separator (18) is never a target.
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(tmp.path().join("exported/icll.test.csv")))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(df.height(), 3);
    let col = |c: &str| df.column(c).unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>();
    for (targets, masks) in col("targets").iter().zip(col("accepted")) {
        for (t, m) in targets.split(' ').zip(masks.split(' ')) {
            let (t, m): (i64, u64) = (t.parse().unwrap(), m.parse().unwrap());
            assert_ne!(t, 18);
            assert!(t == -100 && m == 0 || m >> t & 1 == 1, "target {t}, accepted {m:b}");
        }
    }
    assert_eq!(read("icll.val.csv").len(), 3);
    // Language modelling: windows of the corpus, targets shifted by one.
    for (x, y) in read("lm.train.csv") {
        assert_eq!(&x[1..], &y[..15]);
        assert_eq!((y[15] - x[15] - 1).rem_euclid(26), 0, "{x:?} {y:?}");
    }
}
