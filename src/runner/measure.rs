//! Measurement helpers: device selection and synchronisation, step timing statistics, memory.
use crate::job::DeviceRequest;
use crate::record::Measurements;
use anyhow::{bail, Result};
use std::time::Instant;
use tch::Device;

/// Resolves the suite's device request. `SEQBENCH_DEVICE` (set by a dispatcher that pins a
/// worker to one GPU) takes precedence over `auto`.
pub fn select_device(request: &str) -> Result<Device> {
    let pinned = std::env::var("SEQBENCH_DEVICE").ok();
    let request = match (DeviceRequest::parse(request), pinned.as_deref()) {
        (Ok(DeviceRequest::Auto), Some(p)) => DeviceRequest::parse(p).map_err(anyhow::Error::msg)?,
        (r, _) => r.map_err(anyhow::Error::msg)?,
    };
    match request {
        DeviceRequest::Cpu => Ok(Device::Cpu),
        DeviceRequest::Auto => Ok(Device::cuda_if_available()),
        DeviceRequest::Cuda(i) => {
            let n = tch::Cuda::device_count();
            if !tch::Cuda::is_available() {
                bail!("device cuda:{i} requested but CUDA is not available to libtorch on this machine");
            }
            if i as i64 >= n {
                bail!("device cuda:{i} requested but only {n} CUDA device(s) are visible");
            }
            Ok(Device::Cuda(i))
        }
    }
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
        Device::Cpu => "cpu".into(),
    }
}

/// Waits for queued kernels so that a timer read after it covers the work.
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Runs `f` and returns its result with the elapsed seconds, device synchronised.
pub fn timed<T>(device: Device, f: impl FnOnce() -> T) -> (T, f64) {
    synchronize(device);
    let start = Instant::now();
    let out = f();
    synchronize(device);
    (out, start.elapsed().as_secs_f64())
}

/// Median and 10th/90th percentiles (nearest rank) of `samples`; None when empty.
pub fn percentiles(samples: &[f64]) -> Option<(f64, f64, f64)> {
    let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| s[((q * (s.len() - 1) as f64).round() as usize).min(s.len() - 1)];
    let median = if s.len() % 2 == 1 { s[s.len() / 2] } else { 0.5 * (s[s.len() / 2 - 1] + s[s.len() / 2]) };
    Some((median, at(0.1), at(0.9)))
}

/// Median, 10th and 90th percentile of a throughput, tokens/s.
pub type Rates = (f64, f64, f64);

/// Forward passes timed after the warm-up, for the inference throughput.
pub const TIMED_FORWARD_PASSES: usize = 20;

/// Inference throughput, the same for every task: `warmup` untimed forward passes (no grad),
/// then [`TIMED_FORWARD_PASSES`] timed ones, each giving `tokens` / seconds.
pub fn forward_rates(device: Device, warmup: u64, tokens: f64, forward: impl Fn() -> tch::Tensor) -> Option<Rates> {
    let samples: Vec<f64> = tch::no_grad(|| {
        (0..warmup as usize + TIMED_FORWARD_PASSES)
            .map(|_| timed(device, &forward).1)
            .skip(warmup as usize)
            .map(|secs| tokens / secs)
            .collect()
    });
    percentiles(&samples)
}

/// What every training job measures, whatever its task: where and how long it trained, its
/// size, the training throughput over the steps after the warm-up (`step_rates`), the
/// counters over the training loop, and the achieved FLOP/s against the calibrated peak. Task metrics, inference and memory follow.
pub struct Trained {
    pub device: Device,
    pub n_params: i64,
    pub seq_len: i64,
    pub flops_per_token: f64,
    pub state_size: Option<f64>,
    pub steps: u64,
    pub train_s: f64,
    pub baseline_rss: Option<u64>,
    pub curve: Vec<crate::record::CurvePoint>,
    pub step_rates: Vec<f64>,
    /// Taken when the training loop started; what changed since is recorded.
    pub counters: super::counters::Counters,
}

impl Trained {
    pub fn measurements(self) -> Measurements {
        let mut m = Measurements {
            device: Some(device_name(self.device)),
            threads: Some(tch::get_num_threads() as u64),
            n_params: Some(self.n_params as u64),
            seq_len: Some(self.seq_len as u64),
            // Not a number where a mixer cannot say (a Python layer without flops_per_token).
            flops_per_token: self.flops_per_token.is_finite().then_some(self.flops_per_token),
            state_size: self.state_size,
            steps: Some(self.steps),
            train_s: Some(self.train_s),
            baseline_rss_bytes: self.baseline_rss,
            loss_curve: self.curve,
            ..Default::default()
        };
        self.counters.record_since(&mut m);
        set_rates(&mut m, Throughput::Train, percentiles(&self.step_rates));
        crate::calibrate::add_achieved(&mut m, self.device);
        m
    }
}

/// Which throughput a [`Rates`] is.
#[derive(Clone, Copy)]
pub enum Throughput {
    Train,
    Infer,
    Gen,
}

/// Records a throughput's median and percentiles (left absent when None).
pub fn set_rates(m: &mut Measurements, which: Throughput, rates: Option<Rates>) {
    let Some((med, p10, p90)) = rates else { return };
    let fields = match which {
        Throughput::Train => (&mut m.train_tokens_per_s, &mut m.train_tokens_per_s_p10, &mut m.train_tokens_per_s_p90),
        Throughput::Infer => (&mut m.infer_tokens_per_s, &mut m.infer_tokens_per_s_p10, &mut m.infer_tokens_per_s_p90),
        Throughput::Gen => (&mut m.gen_tokens_per_s, &mut m.gen_tokens_per_s_p10, &mut m.gen_tokens_per_s_p90),
    };
    (*fields.0, *fields.1, *fields.2) = (Some(med), Some(p10), Some(p90));
}

/// Records the job's peak memory, the last measurement (it covers evaluation too).
pub fn set_peak_memory(m: &mut Measurements, device: Device) {
    let (peak, kind) = peak_memory(device);
    (m.peak_mem_bytes, m.mem_kind) = (peak, Some(kind.into()));
}

/// The job's peak memory and what it measures: the process's peak RSS on CPU, the CUDA
/// allocator's peak (since [`cuda_memory::reset_peak`](super::cuda_memory::reset_peak)) on GPUs.
pub fn peak_memory(device: Device) -> (Option<u64>, &'static str) {
    match device {
        Device::Cpu => (proc_status_bytes("VmHWM"), "cpu_peak_rss"),
        _ => match super::cuda_memory::peak_bytes(device) {
            Some(bytes) => (Some(bytes), "cuda_allocator_peak"),
            None => (None, "cuda_not_measured"),
        },
    }
}

/// A field of /proc/self/status in bytes (e.g. `VmHWM`, the peak resident set).
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    proc_status_value(field).map(|kb| kb * 1024)
}

/// The number a field of /proc/self/status holds (`Threads`; in kB for the `Vm*` fields).
pub fn proc_status_value(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let s: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(percentiles(&s), Some((6.0, 2.0, 10.0)));
        assert_eq!(percentiles(&[4.0, 2.0]).map(|p| p.0), Some(3.0));
        assert_eq!(percentiles(&[]), None);
    }

    #[test]
    fn reads_peak_rss() {
        let hwm = proc_status_bytes("VmHWM").expect("VmHWM on Linux");
        assert!(hwm > 1 << 20);
    }
}
