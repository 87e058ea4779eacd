//! seqbench: benchmark sequence architectures on recall, long-range and forecasting tasks,
//! reporting quality, throughput, memory and FLOPs side by side.
//!
//! Pipeline: [`suite`] (YAML → validated [`job::Job`]s) → [`dispatch`] (local pool; MPI later)
//! → [`runner`] (in an isolated `seqbench exec-job` child) → [`record::Record`] →
//! [`store`] (run directory, `records.jsonl`) → [`report`] (polars tables).
pub mod calibrate;
pub mod cli;
pub mod dispatch;
pub mod env_info;
pub mod job;
pub mod models;
pub mod rng;
pub mod runner;
pub mod suite;
pub mod tasks;

// The libtorch-free half lives in crates/seqbench-core; its modules keep their paths here.
pub use seqbench_core::{error, metric, params, record, report, store};
