//! Property tests: no input, however mangled, makes the suite parser and validator panic.
use proptest::prelude::*;
use seqbench::suite::{expand, load_str};
use std::path::Path;

const VALID: &str = "name: ok\ndefaults:\n  steps: [10, 20]\n  seeds: [0, 1]\nmodels:\n  - arch: lstm\n    d_model: 16\n  - preset: transformer-tiny\ntasks:\n  - task: mqar\n    vocab_size: 64\n    seq_len: [32, 64]\n    overrides: {batch_size: 8}\n";

fn check(text: &str) {
    let path = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("suites/fuzz.yaml");
    if let Ok(suite) = load_str(text, &path) {
        let _ = expand(&suite);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_yamlish_text(text in "[a-z_:\\-\\[\\]{}, \n\t0-9.#\"'!&*|>]{0,300}") {
        check(&text);
    }

    #[test]
    fn mutated_valid_suite(edits in proptest::collection::vec((0usize..400, 0usize..3, "[a-z0-9:\\-\\[\\]{}, \n.\"]{1,4}"), 1..4)) {
        let mut text = VALID.to_string();
        for (at, kind, piece) in edits {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) { at -= 1; }
            match kind {
                0 => text.insert_str(at, &piece),
                1 => { let end = (at + piece.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, ""); } }
                _ => { let end = (at + piece.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, &piece); } }
            }
        }
        check(&text);
    }

    #[test]
    fn extreme_numbers(v in any::<i64>(), f in any::<f64>()) {
        let text = VALID.replace("d_model: 16", &format!("d_model: {v}")).replace("steps: [10, 20]", &format!("lr: {f:e}"));
        check(&text);
        let text = VALID.replace("seq_len: [32, 64]", &format!("seq_len: {v}")).replace("vocab_size: 64", &format!("vocab_size: {}", v.wrapping_add(1)));
        check(&text);
    }
}
