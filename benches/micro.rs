//! Micro-benchmarks (criterion): each architecture's forward and forward+backward at a small
//! fixed shape, the two linear scans, record serialization and store append, and the expansion
//! of a large suite grid. `cargo bench --bench micro` times them; `cargo test --benches` (in
//! scripts/test.sh) runs each once as a smoke check.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use seqbench::models::{self, scan, TaskIo};
use seqbench::record::Record;
use std::hint::black_box;
use tch::{nn, Device, Kind, Tensor};

const BATCH: i64 = 8;
const LEN: i64 = 64;
const D_MODEL: i64 = 32;

fn mixers(c: &mut Criterion) {
    tch::set_num_threads(1);
    let io = TaskIo::per_token(64, 64, LEN, true);
    for arch in models::native_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut params = serde_json::json!({ "d_model": D_MODEL, "n_layers": 1 });
        if arch == "rwkv7" {
            // fla's heads of 64 do not fit d_model 32; the tiny preset's heads of 16 do.
            params["head_dim"] = 16.into();
        }
        let info = models::find(arch).expect("registered");
        let model = (info.build)(&vs.root(), &params, &io).expect("builds at the default settings");
        let x = Tensor::randint(64, [BATCH, LEN], (Kind::Int64, Device::Cpu));
        let mut group = c.benchmark_group(format!("{arch} b{BATCH} L{LEN} d{D_MODEL}"));
        group.bench_function("forward", |b| b.iter(|| tch::no_grad(|| black_box(model.forward_t(&x, false)))));
        group.bench_function("forward+backward", |b| {
            b.iter(|| {
                let loss = model.forward_t(&x, true).mean(Kind::Float);
                loss.backward();
                black_box(loss)
            })
        });
        group.finish();
    }
}

fn scans(c: &mut Criterion) {
    tch::set_num_threads(1);
    let opts = (Kind::Float, Device::Cpu);
    let a = Tensor::rand([8, 128, 64, 8], opts) * 0.9;
    let x = Tensor::randn([8, 128, 64, 8], opts);
    let mut group = c.benchmark_group("scan 8×128×64×8");
    group.bench_function("sequential", |b| b.iter(|| tch::no_grad(|| black_box(scan::sequential_scan(&a, &x)))));
    group.bench_function("doubling (chunked)", |b| {
        b.iter(|| tch::no_grad(|| black_box(scan::doubling_scan_chunked(&a, &x))))
    });
    group.finish();
}

fn fixture_record() -> Record {
    let path = format!(
        "{}/tests/fixtures/report/records.jsonl",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("fixture records");
    serde_json::from_str(text.lines().next().expect("a record")).expect("a valid record")
}

fn records(c: &mut Criterion) {
    let record = fixture_record();
    let line = serde_json::to_string(&record).expect("serializes");
    c.bench_function("record to JSON", |b| b.iter(|| black_box(serde_json::to_string(&record).unwrap())));
    c.bench_function("record from JSON", |b| b.iter(|| black_box(serde_json::from_str::<Record>(&line).unwrap())));
    let dir = tempfile::tempdir().expect("temp dir");
    let run = seqbench::store::RunDir::create(dir.path(), "bench").expect("run dir");
    let mut writer = run.record_writer().expect("writer");
    // Each append ends in fsync: this is the cost a finished job pays to be crash-safe.
    c.bench_function("store append (fsync)", |b| b.iter(|| writer.append(&record).unwrap()));
}

fn expansion(c: &mut Criterion) {
    // 10 models × 4 widths × 5 lengths × 5 learning rates × 10 seeds = 10,000 jobs.
    let suite = "name: grid
defaults:
  steps: 10
  seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  lr: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]
models:
  - {arch: lstm, d_model: [32, 64, 128, 256]}
  - {arch: gru, d_model: [32, 64, 128, 256]}
  - {arch: transformer, d_model: [32, 64, 128, 256]}
  - {arch: s4d, d_model: [32, 64, 128, 256]}
  - {arch: mamba, d_model: [32, 64, 128, 256]}
  - {arch: lru, d_model: [32, 64, 128, 256]}
  - {arch: mingru, d_model: [32, 64, 128, 256]}
  - {arch: minlstm, d_model: [32, 64, 128, 256]}
  - {arch: retnet, d_model: [32, 64, 128, 256]}
  - {arch: linear, d_model: [32, 64, 128, 256]}
tasks:
  - {task: mqar, vocab_size: 512, seq_len: [64, 128, 256, 384, 448], num_kv_pairs: 8}
";
    let path = std::path::Path::new("grid.yaml");
    c.bench_function("load + expand a 10,000-job suite", |b| {
        b.iter_batched(
            || (),
            |_| {
                let s = seqbench::suite::load_str(suite, path).expect("valid suite");
                black_box(seqbench::suite::expand(&s).expect("expands").len())
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, mixers, scans, records, expansion);
criterion_main!(benches);
