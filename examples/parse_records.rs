//! JSON parsers on the real record shape: parses every line of a `records.jsonl` into the
//! report's borrowed [`Row`] with serde_json, sonic-rs and simd-json (one thread each, the
//! file in memory), three times, and prints lines/s. How the report's parser was chosen.
//!
//!     cargo run --release --example parse_records -- /tmp/seqbench-bench-report/100000/run/records.jsonl
use seqbench::report::row::Row;
use std::time::Instant;

fn time(name: &str, lines: &[&[u8]], mut parse: impl FnMut(&[u8]) -> bool) {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        let ok = lines.iter().filter(|l| parse(l)).count();
        assert_eq!(ok, lines.len(), "{name}: every line is a record");
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{name:<12} {:>10.0} lines/s  ({best:.3} s for {} lines, best of 3)",
        lines.len() as f64 / best,
        lines.len()
    );
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: parse_records RECORDS_JSONL"))?;
    let text = std::fs::read(&path)?;
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    time("serde_json", &lines, |l| serde_json::from_slice::<Row>(l).is_ok());
    time("sonic-rs", &lines, |l| sonic_rs::from_slice::<Row>(l).is_ok());
    let mut buffer = Vec::new();
    time("simd-json", &lines, |l| {
        buffer.clear();
        buffer.extend_from_slice(l);
        simd_json::serde::from_slice::<Row>(&mut buffer).is_ok()
    });
    let mut buffers = simd_json::Buffers::new(4096);
    time("simd-json (buffers reused)", &lines, |l| {
        buffer.clear();
        buffer.extend_from_slice(l);
        use serde::Deserialize;
        simd_json::Deserializer::from_slice_with_buffers(&mut buffer, &mut buffers)
            .is_ok_and(|mut de| Row::deserialize(&mut de).is_ok())
    });
    Ok(())
}
