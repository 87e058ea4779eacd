//! `seqbench calibrate`: the device's dense matmul peak, measured once and cached, so that
//! records can carry MFU (achieved FLOP/s ÷ peak). The peak is the median FLOP/s of square
//! n×n matmuls (2n³ FLOPs each) after warm-up: fp32 on CPU at each thread count a job may use,
//! fp32 and bf16 on CUDA. It is what this libtorch reaches on this machine, not a datasheet
//! number, so MFU says how much of the reachable matmul rate a model's step achieves.
//!
//! Cache: `$SEQBENCH_HOME/calibration.json` (else `~/.cache/seqbench/`), keyed by host, device,
//! dtype and threads.
use crate::runner::measure::{self, percentiles, timed};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    pub flops_per_s: f64,
    /// Matrix side used, and when it was measured.
    pub n: i64,
    pub measured_at: String,
}

/// `host/device/dtype/threads` → peak.
pub type Calibration = BTreeMap<String, Peak>;

pub fn cache_path() -> Option<PathBuf> {
    crate::env_info::seqbench_home().map(|d| d.join("calibration.json"))
}

pub fn key(host: &str, device: &str, dtype: &str, threads: u64) -> String {
    format!("{host}/{device}/{dtype}/{threads}")
}

pub fn load() -> Calibration {
    cache_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The cached fp32 peak for this host and `device`: on CPU at `threads`, or at the nearest
/// calibrated thread count scaled linearly (matmul scales about linearly with cores); on GPUs
/// thread counts do not apply (stored as 0).
pub fn peak_for(device: Device, threads: u64) -> Option<f64> {
    let prefix = format!("{}/{}/fp32/", crate::env_info::hostname(), measure::device_name(device));
    let calibrated: Vec<(u64, f64)> = load()
        .into_iter()
        .filter_map(|(k, p)| Some((k.strip_prefix(&prefix)?.parse::<u64>().ok()?, p.flops_per_s)))
        .collect();
    if device != Device::Cpu {
        return calibrated.iter().find(|(t, _)| *t == 0).map(|(_, peak)| *peak);
    }
    let (t, peak) = calibrated.into_iter().filter(|(t, _)| *t > 0).min_by_key(|(t, _)| t.abs_diff(threads))?;
    Some(peak * threads as f64 / t as f64)
}

/// Fills in achieved training FLOP/s and MFU from the throughput and FLOPs already measured.
pub fn add_achieved(m: &mut crate::record::Measurements, device: Device) {
    if let (Some(f), Some(t)) = (m.flops_per_token, m.train_tokens_per_s) {
        let achieved = 3.0 * f * t;
        m.train_flops_per_s = Some(achieved);
        m.mfu = peak_for(device, m.threads.unwrap_or(1)).map(|peak| achieved / peak);
    }
}

/// Median FLOP/s of `reps` n×n matmuls of `kind` on `device`.
pub fn matmul_rate(device: Device, kind: Kind, n: i64, reps: usize) -> f64 {
    tch::no_grad(|| {
        let a = Tensor::randn([n, n], (kind, device));
        let b = Tensor::randn([n, n], (kind, device));
        let flops = 2.0 * (n as f64).powi(3);
        let samples: Vec<f64> =
            (0..reps + 2).map(|_| timed(device, || a.mm(&b)).1).skip(2).map(|s| flops / s).collect();
        percentiles(&samples).map_or(0.0, |p| p.0)
    })
}

/// Measures and stores the peaks; returns the lines to print.
pub fn run(device_request: &str, n: Option<i64>) -> Result<Vec<String>> {
    let device = measure::select_device(device_request)?;
    let host = crate::env_info::hostname();
    let mut cal = load();
    let mut lines = Vec::new();
    let now = chrono::Utc::now().to_rfc3339();
    let cases: Vec<(&str, Kind, u64)> = match device {
        Device::Cpu => {
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as u64;
            let mut threads: Vec<u64> = (0..).map(|i| 1u64 << i).take_while(|&t| t < cores).collect();
            threads.push(cores);
            threads.into_iter().map(|t| ("fp32", Kind::Float, t)).collect()
        }
        _ => vec![("fp32", Kind::Float, 0), ("bf16", Kind::BFloat16, 0)],
    };
    let n = n.unwrap_or(if device == Device::Cpu { 1024 } else { 8192 });
    for (dtype, kind, threads) in cases {
        if threads > 0 {
            tch::set_num_threads(threads as i32);
        }
        let rate = matmul_rate(device, kind, n, 10);
        let k = key(&host, &measure::device_name(device), dtype, threads);
        lines.push(format!("{k}: {:.1} GFLOP/s ({n}×{n} matmul, median of 10)", rate / 1e9));
        cal.insert(k, Peak { flops_per_s: rate, n, measured_at: now.clone() });
    }
    let path = cache_path().context("no home directory for the calibration cache")?;
    crate::store::write_atomic(&path, serde_json::to_string_pretty(&cal)?.as_bytes())?;
    lines.push(format!("saved in {}", path.display()));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_rate_is_plausible_on_cpu() {
        let rate = matmul_rate(Device::Cpu, Kind::Float, 256, 3);
        // Any CPU of the last decade does between 0.1 and 10,000 GFLOP/s on a 256² fp32 matmul.
        assert!((1e8..1e13).contains(&rate), "{rate}");
    }
}
