//! Denormal floats in backpropagation through time: with the loss on the last position only
//! (as `induction`, MQAR and the LRA classifiers label), the gradient reaching early positions
//! of an LSTM shrinks step by step through the subnormal range. Under PyTorch's default those
//! values are computed (slowly, on x86); with seqbench's default they are flushed to zero.
//! Its own test binary: the flags belong to a thread, and libtorch is kept to one thread here
//! so that every tensor op runs on the test's thread.
use seqbench::models::{self, TaskIo};
use seqbench::runner::denormal;
use serde_json::json;
use tch::{nn, Device, Kind, Tensor};

/// Subnormal values in the gradient with respect to the inputs of a 2-layer LSTM after one
/// backward pass of a last-position loss, and that loss.
fn input_gradient_subnormals(flush: bool) -> (i64, f64) {
    denormal::set_this_thread(flush);
    tch::manual_seed(0);
    let (length, features) = (256, 8);
    let io = TaskIo { input_features: features, ..TaskIo::per_token(0, 16, length, true) };
    let vs = nn::VarStore::new(Device::Cpu);
    let info = models::find("lstm").expect("lstm is registered");
    let model = (info.build)(&vs.root(), &json!({"d_model": 64, "n_layers": 2}), &io).expect("builds");
    let x = Tensor::randn([8, length, features], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let logits = model.forward_t(&x, true).select(1, length - 1);
    let labels = Tensor::randint(16, [8], (Kind::Int64, Device::Cpu));
    let loss = logits.cross_entropy_for_logits(&labels);
    loss.backward();
    let count = denormal::count_subnormal(&x.grad());
    denormal::set_this_thread(false);
    (count, loss.double_value(&[]))
}

#[test]
fn sparse_label_lstm_gradients_are_denormal_by_default_and_flushed_with_the_flag() {
    tch::set_num_threads(1);
    let (kept, loss_kept) = input_gradient_subnormals(false);
    let (flushed, loss_flushed) = input_gradient_subnormals(true);
    assert!(kept > 100, "PyTorch's default should leave denormal gradients, found {kept}");
    assert_eq!(flushed, 0, "flushed denormals must leave none");
    // The forward pass has no denormals: the flag changes the speed, not the loss.
    assert_eq!(loss_kept, loss_flushed);
}

#[test]
fn the_probe_through_the_pool_reports_the_mode_of_the_thread_that_started_it() {
    // One thread: the probe runs on this test's thread only, which sets the mode each time.
    tch::set_num_threads(1);
    assert_eq!(denormal::apply(true).unwrap(), denormal::FLUSHED);
    assert_eq!(denormal::apply(false).unwrap(), denormal::KEPT);
}
