//! Language modelling: windows read back from a corpus whose every position is known, token
//! files checked, and a short run that records bits per byte and the loss by position.
use seqbench::params::ParamMap;
use seqbench::tasks::{find, BuildContext, TaskData};
use std::process::Command;

fn build_err(pairs: &[(&str, serde_yaml::Value)]) -> String {
    match build(pairs) {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

fn build(pairs: &[(&str, serde_yaml::Value)]) -> anyhow::Result<TaskData> {
    let combo: ParamMap = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let info = find("lm").unwrap();
    let resolved = (info.resolve)(&combo).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    info.build_tokens(&resolved, BuildContext::seed(5))
}

#[test]
fn windows_are_shifted_by_one_and_split_by_position() {
    let tmp = tempfile::tempdir().unwrap();
    // Byte i of the corpus is i mod 251: a window's place in the file is readable from it.
    let corpus: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let path = tmp.path().join("corpus.txt");
    std::fs::write(&path, &corpus).unwrap();
    let data = build(&[
        ("corpus", path.to_str().unwrap().into()),
        ("seq_len", 16.into()),
        ("train_windows", 200.into()),
        ("eval_windows", 5.into()),
        ("val_fraction", 0.1.into()),
        ("test_fraction", 0.1.into()),
    ])
    .unwrap();
    assert_eq!((data.io.vocab_size, data.io.seq_len), (256, 16));
    let check = |x: &[i64], y: &[i64]| {
        for t in 0..16 {
            assert_eq!((x[t] + 1) % 251, y[t], "the target is the next byte");
            assert_eq!((x[0] + t as i64) % 251, x[t], "a window is contiguous");
        }
    };
    // The position of a window is known up to multiples of 251: check the region by the value
    // pattern of the evenly spaced test windows (1800..2000: starts 1800, 1845, …, 1983).
    let starts: Vec<i64> = (0..data.test.n).map(|i| data.test.example(i).0[0]).collect();
    let expected: Vec<i64> = (0..5).map(|i| ((1800 + 183 * i / 4) % 251) as i64).collect();
    assert_eq!(starts, expected);
    for split in [&data.train, &data.test, data.val.as_ref().unwrap()] {
        for i in 0..split.n {
            let (x, y) = split.example(i);
            check(&x, &y);
        }
    }
    assert_eq!(data.train.n, 200);
    let distinct: std::collections::BTreeSet<i64> = (0..200).map(|i| data.train.example(i).0[0]).collect();
    assert!(distinct.len() > 100, "random training offsets");
}

#[test]
fn token_files_are_uint16_checked_against_the_vocabulary() {
    let tmp = tempfile::tempdir().unwrap();
    let ids: Vec<u16> = (0..3000u32).map(|i| (i * 7 % 1000) as u16).collect();
    let path = tmp.path().join("tokens.bin");
    std::fs::write(&path, ids.iter().flat_map(|t| t.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let file = path.to_str().unwrap();
    let data = build(&[("corpus", file.into()), ("seq_len", 8.into()), ("train_windows", 10.into())]).unwrap();
    assert_eq!(data.io.vocab_size, 1000, "the largest id + 1");
    assert_eq!(data.lm, Some(seqbench::tasks::lm::LmScore::Perplexity));
    let err = build_err(&[("corpus", file.into()), ("seq_len", 8.into()), ("vocab_size", 500.into())]);
    assert!(err.contains("token id 999 is not below vocab_size 500"), "{err}");
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    let err = build_err(&[("corpus", file.into())]);
    assert!(err.contains("not a whole number of uint16 tokens"), "{err}");
    let err = build_err(&[("corpus", "nowhere/none.txt".into())]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_short_run_records_bits_per_byte_and_loss_by_position() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "the quick brown fox jumps over the lazy dog. ".repeat(200);
    std::fs::write(tmp.path().join("fox.txt"), text).unwrap();
    std::fs::write(
        tmp.path().join("s.yaml"),
        "name: lm\ndefaults: { steps: 30, batch_size: 8, lr: 3.0e-3, seeds: [0], generate_tokens: 0 }\nmodels:\n  - { arch: lstm, d_model: 32, n_layers: 1 }\ntasks:\n  - { task: lm, corpus: fox.txt, seq_len: 64, train_windows: 200, eval_windows: 16 }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(["run", "s.yaml", "--out", "res", "--jobs", "1"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = std::fs::read_link(tmp.path().join("res/lm/latest")).unwrap();
    let run = tmp.path().join("res/lm").join(run);
    let line = std::fs::read_to_string(run.join("records.jsonl")).unwrap();
    let r: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let (loss, bpb) = (r["eval_loss"].as_f64().unwrap(), r["bits_per_byte"].as_f64().unwrap());
    assert!((bpb - loss / std::f64::consts::LN_2).abs() < 1e-9);
    assert!(bpb < 8.0, "30 steps on a repeated sentence beat a uniform guess: {bpb}");
    let bands = r["loss_by_position"].as_array().unwrap();
    assert_eq!(bands.len(), 32);
    assert_eq!(bands[0]["position"], 2);
    assert_eq!(bands[31]["position"], 64);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("bits/byte") && report.contains("lm_loss_by_position"), "{report}");
    // The header says when the jobs ran and on what (env.json).
    let header = report.lines().nth(2).unwrap();
    assert!(
        header.starts_with("Jobs ran 20") && header.contains("; seqbench commit ") && header.contains(" cores, "),
        "{header}"
    );
}
