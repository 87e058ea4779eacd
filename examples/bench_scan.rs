//! Forward + backward time of the scan implementations on CPU, one thread, at Mamba-like shapes
//! (batch × length × inner width × state): the libtorch-op linear scans against the fused op on
//! the same (b, L, E, N) tensors, then Mamba's whole selective scan (discretisation, scan,
//! readout, D and gate) by libtorch ops against the fused op, which never forms those tensors.
//! Run: `cargo run --release --example bench_scan`.
use seqbench::models::fused::{self, Form, Selective};
use seqbench::models::scan;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Mean milliseconds of `reps` runs of forward + backward of `f`'s sum.
fn time_ms(reps: u32, f: impl Fn() -> Tensor) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        f().sum(Kind::Float).backward();
    }
    start.elapsed().as_secs_f64() * 1000.0 / f64::from(reps)
}

fn linear_scans() {
    println!("| shape (b×L×E×N) | linear scan | fwd+bwd ms |\n| --- | --- | ---: |");
    for (b, l, e, n) in [(64, 32, 128, 16), (16, 1024, 128, 16)] {
        let opts = (Kind::Float, Device::Cpu);
        let a = (Tensor::rand([b, l, e, n], opts) * 0.9).set_requires_grad(true);
        let x = Tensor::randn([b, l, e, n], opts).set_requires_grad(true);
        let scans: [(&str, &dyn Fn() -> Tensor); 3] = [
            ("sequential (libtorch ops)", &|| scan::sequential_scan(&a, &x)),
            ("doubling, chunks of 64 (libtorch ops)", &|| scan::doubling_scan_chunked(&a, &x)),
            ("fused op", &|| fused::linear(&a, &x, Form::Native)),
        ];
        for (name, f) in scans {
            println!("| {b}×{l}×{e}×{n} | {name} | {:.1} |", time_ms(3, f));
        }
    }
}

fn selective_scans() {
    println!("\n| shape (b×L×E×N) | selective scan | fwd+bwd ms |\n| --- | --- | ---: |");
    let (b, l, e, n) = (16, 1024, 256, 16);
    let opts = (Kind::Float, Device::Cpu);
    let leaf = |t: Tensor| t.set_requires_grad(true);
    let x = leaf(Tensor::randn([b, l, e], opts));
    let delta = leaf((Tensor::randn([b, l, e], opts) - 3.0).softplus());
    let a = leaf(-Tensor::arange_start(1, n + 1, opts).repeat([e, 1]));
    let (bm, cm) = (leaf(Tensor::randn([b, l, n], opts)), leaf(Tensor::randn([b, l, n], opts)));
    let (d, z) = (leaf(Tensor::ones([e], opts)), leaf(Tensor::randn([b, l, e], opts)));
    let reference = || {
        let decay = (delta.unsqueeze(-1) * &a).exp();
        let input = delta.unsqueeze(-1) * bm.unsqueeze(2) * x.unsqueeze(-1);
        let h = scan::sequential_scan(&decay, &input);
        let y = (h * cm.unsqueeze(2)).sum_dim_intlist([-1i64].as_slice(), false, None);
        (y + &x * &d) * z.silu()
    };
    let fused = || Selective { x: &x, delta: &delta, a: &a, b: &bm, c: &cm, d: &d, z: Some(&z) }.run(Form::Native);
    for (name, f) in [("libtorch ops", &reference as &dyn Fn() -> Tensor), ("fused op", &fused)] {
        println!("| {b}×{l}×{e}×{n} | {name} | {:.1} |", time_ms(2, f));
    }
}

fn main() {
    tch::set_num_threads(1);
    linear_scans();
    selective_scans();
}
