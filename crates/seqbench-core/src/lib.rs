//! The part of seqbench that needs no libtorch: the record contract ([`record`]), run
//! directories ([`store`]), metric descriptors ([`metric`]), the report and `compare`
//! ([`report`]), the task catalogue ([`tasks`]) and the command line's definition ([`cli`]).
//! The `seqbench` binary links this crate alone, so reading results starts without loading
//! libtorch; the `seqbench` library re-exports these modules under the same paths.
pub mod cli;
pub mod error;
pub mod host;
pub mod metric;
pub mod params;
pub mod record;
pub mod report;
pub mod store;
pub mod tasks;
pub mod units;
