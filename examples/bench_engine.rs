//! Forward + backward time of the linear-attention engine's token loop against its chunkwise
//! form, per decay kind, with and without the delta rule, at the shapes of a d_model-128 model
//! with 4 heads (d_k = d_v = 32), batch 4, L = 1024, one thread; then the chunkwise form alone at
//! the shapes Gated DeltaNet and DeltaProduct give it in the scaling suite at L = 4,096
//! (d_k 32, d_v 64, 4 heads, batch 4, scalar decay, delta rule; DeltaProduct's two steps per token).
//! Run: `cargo run --release --example bench_engine` (or `scripts/bench_linear_attention.sh`).
use seqbench::models::linear_attention::{chunkwise, chunkwise_every, naive, Decay, Inputs};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn inputs(decay: &str, delta: bool, (b, h, l, d): (i64, i64, i64, i64)) -> Inputs {
    steps_inputs(decay, delta, 1, (b, h, l, d, d))
}

/// Inputs of `l` steps, `every` per token (q has a row per token), d_k = `d`, d_v = `dv`.
fn steps_inputs(decay: &str, delta: bool, every: i64, (b, h, l, d, dv): (i64, i64, i64, i64, i64)) -> Inputs {
    let opts = (Kind::Float, Device::Cpu);
    let grad = |t: Tensor| t.set_requires_grad(true);
    let k = Tensor::randn([b, h, l, d], opts);
    let k = if delta { &k / k.norm_scalaropt_dim(2, [-1i64].as_slice(), true) } else { k };
    Inputs {
        q: grad(Tensor::randn([b, h, l / every, d], opts) * 0.2),
        k: grad(k),
        v: grad(Tensor::randn([b, h, l, dv], opts)),
        decay: match decay {
            "none" => Decay::None,
            "scalar" => Decay::Scalar(grad(-Tensor::rand([b, h, l], opts) * 0.1)),
            _ => Decay::Vector(grad(-Tensor::rand([b, h, l, d], opts) * 0.1)),
        },
        beta: delta.then(|| grad(Tensor::rand([b, h, l], opts))),
    }
}

/// Mean seconds of forward + backward over `reps` runs (after one warm-up run).
fn time(reps: usize, f: &dyn Fn() -> Tensor) -> f64 {
    f().sum(Kind::Float).backward();
    let start = Instant::now();
    for _ in 0..reps {
        f().sum(Kind::Float).backward();
    }
    start.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let shape = (4, 4, 1024, 32);
    println!("| decay | delta rule | chunk | token loop ms | chunkwise ms | speed-up |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    // A per-dimension decay at 16, the mixers' CPU default (factored scores), and at 4.
    let cases = [
        ("none", false, 64),
        ("scalar", false, 64),
        ("vector", false, 16),
        ("vector", false, 4),
        ("none", true, 64),
        ("scalar", true, 64),
    ];
    for (decay, delta, chunk) in cases {
        let x = inputs(decay, delta, shape);
        let loop_s = time(1, &|| naive(&x, None).0);
        let chunk_s = time(3, &|| chunkwise(&x, chunk, None).0);
        println!(
            "| {decay} | {delta} | {chunk} | {:.0} | {:.0} | {:.1}× |",
            loop_s * 1e3,
            chunk_s * 1e3,
            loop_s / chunk_s
        );
    }
    println!();
    println!(
        "| mixer's engine at L = 4,096 | steps per token | chunk | chunkwise ms (forward + backward, one layer) |"
    );
    println!("| --- | ---: | ---: | ---: |");
    for (name, every) in [("gated_deltanet", 1), ("deltaproduct", 2)] {
        for chunk in [16, 32] {
            let x = steps_inputs("scalar", true, every, (4, 4, 4096 * every, 32, 64));
            let s = time(3, &|| chunkwise_every(&x, every, chunk, None).0);
            println!("| {name} | {every} | {chunk} | {:.0} |", s * 1e3);
        }
    }
}
