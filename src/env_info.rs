//! The environment a run executed in, written to `env.json`: enough to reproduce or explain a
//! number (versions, commit, CPU, GPUs, host).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvInfo {
    pub seqbench_version: String,
    pub git_commit: String,
    pub torch_version: String,
    pub libtorch_dir: String,
    pub rustc: String,
    pub os: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpu_cores: usize,
    pub memory_bytes: Option<u64>,
    pub cuda_available: bool,
    pub cuda_device_count: i64,
    pub gpus: Vec<String>,
    pub hostname: String,
    pub command: Vec<String>,
    pub created_at: String,
}

/// seqbench's own files on this machine (venv, build, caches): `$SEQBENCH_HOME`, else
/// `~/.cache/seqbench`, as scripts/env.sh sets it.
pub fn seqbench_home() -> Option<std::path::PathBuf> {
    std::env::var_os("SEQBENCH_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/seqbench")))
}

pub use seqbench_core::host::hostname;

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn gpu_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
        })
        .unwrap_or_default()
}

pub fn cpu_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl EnvInfo {
    pub fn collect() -> Self {
        EnvInfo {
            seqbench_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("SEQBENCH_GIT_COMMIT").into(),
            torch_version: env!("SEQBENCH_TORCH_VERSION").into(),
            libtorch_dir: env!("SEQBENCH_LIBTORCH_DIR").into(),
            rustc: env!("SEQBENCH_RUSTC_VERSION").into(),
            os: os_release(),
            kernel: kernel(),
            cpu_model: cpu_model(),
            cpu_cores: cpu_cores(),
            memory_bytes: memory_bytes(),
            cuda_available: tch::Cuda::is_available(),
            cuda_device_count: tch::Cuda::device_count(),
            gpus: gpu_names(),
            hostname: hostname(),
            command: std::env::args().collect(),
            created_at: chrono::Local::now().to_rfc3339(),
        }
    }
}
