//! Synthetic records for the report benchmark (`scripts/bench_report.sh`): N records of a
//! suite with 3 tasks × 10 models × 4 sequence lengths × many seeds, 1 % of them failed, each
//! with a 20-point loss curve, written as `records.jsonl` in the record format.
//!
//!     cargo run --release --example gen_records -- 1000000 /tmp/bench-report/run
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(dir)) = (args.get(1).and_then(|a| a.parse::<u64>().ok()), args.get(2)) else {
        eprintln!("usage: gen_records N RUN_DIR");
        std::process::exit(2);
    };
    std::fs::create_dir_all(dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(std::path::Path::new(dir).join("records.jsonl"))?);
    let tasks = ["mqar", "selective_copy", "induction"];
    let models = ["lstm", "gru", "transformer", "s4d", "mamba", "lru", "mingru", "minlstm", "retnet", "linear"];
    let lengths = [64, 128, 256, 512];
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..n {
        let (task, model) = (tasks[(i % 3) as usize], models[((i / 3) % 10) as usize]);
        let len = lengths[((i / 30) % 4) as usize];
        let seed = i / 120;
        let failed = uniform() < 0.01;
        let acc = (0.2 + 0.6 * uniform()).min(1.0);
        let speed = 1e4 * (1.0 + 10.0 * uniform()) / (len as f64 / 64.0);
        let curve: Vec<String> = (1..=20)
            .map(|k| format!("{{\"step\": {}, \"loss\": {:.4}}}", k * 50, 3.0 / (k as f64).sqrt() + 0.1 * uniform()))
            .collect();
        let measurements = if failed {
            "\"status\": \"crashed\", \"reason\": \"killed by signal 9 (SIGKILL)\"".to_string()
        } else {
            format!(
                "\"status\": \"ok\", \"reason\": null, \"accuracy\": {acc:.4}, \"exact_match\": {:.4}, \"eval_loss\": {:.4}, \"train_tokens_per_s\": {speed:.1}, \"infer_tokens_per_s\": {:.1}, \"gen_tokens_per_s\": {:.1}, \"peak_mem_bytes\": {}, \"n_params\": {}, \"flops_per_token\": {:.1}, \"steps\": 1000, \"train_s\": {:.2}, \"loss_curve\": [{}]",
                acc * acc,
                2.0 * (1.0 - acc),
                3.0 * speed,
                speed / 10.0,
                100_000_000 + (uniform() * 1e8) as u64,
                100_000 + (i % 10) * 1000,
                2e5 + len as f64 * 100.0,
                60.0 * uniform(),
                curve.join(", ")
            )
        };
        writeln!(
            out,
            "{{\"run_id\": \"bench\", \"suite\": \"bench\", \"task\": \"{task}\", \"task_label\": \"{task}\", \"hostname\": \"h\", \"started_at\": \"2026-11-24T00:00:00+00:00\", \"finished_at\": \"2026-11-24T00:01:00+00:00\", \"seqbench_version\": \"0.1.0\", \"job_id\": \"j{i:07}\", \"model\": \"{model}\", \"arch\": \"{model}\", \"seed\": {seed}, \"params\": {{\"task.seq_len\": {len}, \"model.d_model\": 64}}, \"swept\": [\"task.seq_len\"], \"wall_s\": 60.0, {measurements}}}"
        )?;
    }
    out.flush()?;
    Ok(())
}
