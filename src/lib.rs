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
pub mod error;
pub mod job;
pub mod metric;
pub mod models;
pub mod params;
pub mod record;
pub mod report;
pub mod rng;
pub mod runner;
pub mod store;
pub mod suite;
pub mod tasks;
