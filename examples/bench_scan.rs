//! Forward + backward time of the two linear-scan implementations on CPU, at Mamba-like shapes
//! (batch × length × inner width × state). Run: `cargo run --release --example bench_scan`.
use seqbench::models::scan;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

type ScanFn = fn(&Tensor, &Tensor) -> Tensor;

fn main() {
    tch::set_num_threads(1);
    println!("| shape (b×L×E×N) | scan | fwd+bwd ms |\n| --- | --- | ---: |");
    for (b, l, e, n) in [(64, 32, 128, 16), (16, 1024, 128, 16)] {
        let opts = (Kind::Float, Device::Cpu);
        let a = (Tensor::rand([b, l, e, n], opts) * 0.9).set_requires_grad(true);
        let x = Tensor::randn([b, l, e, n], opts).set_requires_grad(true);
        let scans: [(&str, ScanFn); 2] =
            [("sequential", scan::sequential_scan), ("doubling (chunks of 64)", scan::doubling_scan_chunked)];
        for (name, f) in scans {
            let reps = 3;
            let start = Instant::now();
            for _ in 0..reps {
                f(&a, &x).sum(Kind::Float).backward();
            }
            let ms = start.elapsed().as_secs_f64() * 1000.0 / reps as f64;
            println!("| {b}×{l}×{e}×{n} | {name} | {ms:.1} |");
        }
    }
}
