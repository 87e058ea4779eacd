//! The chunk of the chunkwise form: a number of positions, or `auto`, which picks by device and
//! by the mixer's kind, since the best chunk differs by an order of magnitude between them.
//! - A per-dimension decay (GLA, RWKV-6, HGRN2) forms its scores as one matmul of q ⊙ e^{b} and
//!   k ⊙ e^{−b} while no chunk decays by more than e^{−40} (`linear_attention::factorable`);
//!   otherwise the call halves its chunk until they do, and below 8 forms exact (c, c, d_k)
//!   weights (`linear_attention::halved`). On one CPU thread at L = 4,096 chunks of 16 trained
//!   fastest (tokens/s with chunks of 4, 16, 32, 64: GLA 14.2k, 18.7k, 18.0k, 18.3k; RWKV-6
//!   11.6k, 12.4k, 12.2k, 2.2k; HGRN2 10.8k, 17.2k, 15.4k, 2.2k; the transformer 5.9k). At 64
//!   RWKV-6's and HGRN2's first layers decay by more than the limit: that run took the
//!   (c, c, d_k) form at 64, which is why a call now halves its chunk instead; before the
//!   factored scores, chunks of 4 were fastest (GLA 1.91× the transformer,
//!   1.15× with 16, 0.77× with 32).
//! - The delta rule (DeltaNet, Gated DeltaNet, DeltaProduct): on one CPU thread chunks of 16
//!   trained about as fast as 32 and faster than 64 (DeltaNet 13.2k tokens/s with 16, 11.2k
//!   with 32, 10.3k with 64 at L = 4,096).
//! - RWKV-7's generalised delta rule forms its pair weights as matmuls when its decay allows,
//!   which it always does up to chunks of 64: chunks of 32 trained fastest ([`DPLR_CPU`]).
//! - On CUDA chunks of 64: an H200 in bfloat16 trained GLA, RWKV-6 and HGRN2 6–8× faster with
//!   chunks of 64 than with 4, short chunks being bound by kernel launches; fla's GPU kernels use
//!   chunks of 64 (docs/models.md, "The chunkwise linear-attention engine").
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Positions per chunk: `Fixed(c)` or `Auto` (the mixer's CPU chunk on the CPU, 64 on CUDA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkSize {
    #[default]
    Auto,
    Fixed(i64),
}

/// `auto` on the CPU for a per-dimension decay: factored scores, and a chunk short enough that
/// decays rarely exceed the factoring limit (then its (c, c, d_k) weights stay affordable).
pub const VECTOR_DECAY_CPU: i64 = 16;
/// `auto` on the CPU for RWKV-7: its decay (at most e^{−0.61} per step) lets the generalised
/// delta rule form its pair weights as matmuls (`linear_attention::dplr`), so chunks can be long.
/// On one CPU thread at L = 4,096 (d_model 128, 2 layers, batch 4) chunks of 4, 8, 16, 32 and
/// 64 trained at 6.5k, 8.7k, 9.5k, 10.1k and 9.1k tokens/s, the transformer at 5.8k.
pub const DPLR_CPU: i64 = 32;
/// `auto` on the CPU for the delta rule: the UT system's (c, c) solve and scores stay small.
pub const DELTA_RULE_CPU: i64 = 16;
/// `auto` on CUDA: few, large matmuls; a short chunk is bound by kernel launches.
const AUTO_CUDA: i64 = 64;

impl ChunkSize {
    /// The chunk the mixer runs with on `device`; `cpu` is its kind's choice for `auto` there.
    pub fn positions(self, device: tch::Device, cpu: i64) -> i64 {
        match self {
            ChunkSize::Fixed(c) => c,
            ChunkSize::Auto if device.is_cuda() => AUTO_CUDA,
            ChunkSize::Auto => cpu,
        }
    }

    /// A fixed chunk is at least one position.
    pub fn validate(self) -> Result<(), (&'static str, String)> {
        match self {
            ChunkSize::Fixed(c) => super::check_at_least("chunk", c, 1),
            ChunkSize::Auto => Ok(()),
        }
    }
}

impl Serialize for ChunkSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChunkSize::Auto => s.serialize_str("auto"),
            ChunkSize::Fixed(c) => s.serialize_i64(*c),
        }
    }
}

impl<'de> Deserialize<'de> for ChunkSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ChunkSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive number of positions or `auto` (by device and mixer)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ChunkSize, E> {
                Ok(ChunkSize::Fixed(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ChunkSize, E> {
                i64::try_from(v).map(ChunkSize::Fixed).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ChunkSize, E> {
                match v {
                    "auto" => Ok(ChunkSize::Auto),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ChunkSize, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn auto_picks_by_device_and_a_number_is_kept() {
        assert_eq!(parse("auto").unwrap().positions(tch::Device::Cpu, VECTOR_DECAY_CPU), 16);
        assert_eq!(parse("auto").unwrap().positions(tch::Device::Cpu, DPLR_CPU), 32);
        assert_eq!(parse("auto").unwrap().positions(tch::Device::Cpu, DELTA_RULE_CPU), 16);
        assert_eq!(parse("auto").unwrap().positions(tch::Device::Cuda(0), DELTA_RULE_CPU), 64);
        assert_eq!(parse("8").unwrap().positions(tch::Device::Cuda(0), VECTOR_DECAY_CPU), 8);
        assert_eq!(serde_json::to_string(&ChunkSize::Auto).unwrap(), "\"auto\"");
        assert_eq!(serde_json::to_string(&ChunkSize::Fixed(8)).unwrap(), "8");
    }

    #[test]
    fn anything_else_is_refused_with_what_was_expected() {
        let err = parse("big").unwrap_err();
        assert!(err.contains("a positive number of positions or `auto`"), "{err}");
        assert!(ChunkSize::Fixed(0).validate().unwrap_err().1.contains("at least 1"));
        assert!(parse("1.5").is_err());
    }
}
