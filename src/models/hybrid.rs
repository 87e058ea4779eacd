//! Hybrid stacks: blocks that cycle through a list of registered mixers, as Jamba (Mamba and
//! attention), Samba (Mamba and sliding-window attention) and Griffin (RG-LRU and local
//! attention) mix them, so that a mix can be compared with the pure models.
//!
//! ```yaml
//! - arch: hybrid
//!   d_model: 64
//!   n_layers: 3
//!   layers: "mamba,mamba,transformer"   # a string: a YAML list would be a sweep
//!   mamba.d_state: 16                   # <mixer>.<parameter>: that mixer's own settings
//!   transformer.n_heads: 4
//! ```
//!
//! Block i holds `layers[i % len]`. Each mixer is built by its own architecture's config, with
//! the hybrid's d_model, n_layers and dropout (so its initialisation scales as in a pure stack of
//! that depth) and its `<mixer>.` parameters, resolved and checked by that architecture. The
//! backbone (norms, MLP, embedding, head) is the hybrid's own: `plain`, or `griffin` for
//! Griffin's residual block (Griffin = `layers: "hawk,hawk,local_attention"`, `backbone:
//! griffin`). The recurrent form, FLOPs, state size and parameter counts compose from the blocks.
use super::backbone::{Backbone, BackboneConfig, Norm};
use super::rnn::{Cell, RnnConfig, RnnMixer};
use super::transformer::{Attention, Positions, TransformerConfig};
use super::{deltanet, gla, hawk, local_attention, lru, mamba, mamba2, minrnn, mlstm, retnet, rwkv6, s4d, slstm};
use super::{ArchConfig, ArchInfo, Mixer, SeqModel, TaskIo};
use crate::params::{ParamError, ParamMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::nn;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HybridConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    pub norm: Norm,
    /// The mixers of the blocks, comma-separated, cycled over n_layers.
    pub layers: String,
    /// `plain`: `norm` and a GeLU MLP with PyTorch's init; `griffin`: Griffin's residual block
    /// (RMSNorm ε 1e-6, gated GeLU MLP, Griffin's init; `norm` is then ignored).
    pub backbone: HybridBackbone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HybridBackbone {
    Plain,
    Griffin,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            d_model: 64,
            n_layers: 3,
            mlp_ratio: 2,
            dropout: 0.0,
            norm: Norm::Rms,
            layers: "mamba,mamba,transformer".into(),
            backbone: HybridBackbone::Plain,
        }
    }
}

/// Mixers that cannot stand alone in a block: HGRN2's lower bounds are model-level, and the
/// DLinear/NLinear time maps are not sequence mixers of a residual stack.
const NOT_MIXERS: &[&str] = &["hgrn2", "linear", "hybrid"];

/// The hybrid's own settings that every mixer is built with.
const SHARED: [&str; 3] = ["d_model", "n_layers", "dropout"];

impl HybridConfig {
    pub fn layer_names(&self) -> Vec<&str> {
        self.layers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    }

    fn backbone(&self) -> BackboneConfig {
        let (d, n, mlp, dropout) = (self.d_model, self.n_layers, self.mlp_ratio, self.dropout);
        match self.backbone {
            HybridBackbone::Plain => BackboneConfig { norm: self.norm, ..BackboneConfig::plain(d, n, mlp, dropout) },
            HybridBackbone::Griffin => BackboneConfig::griffin(d, n, mlp, dropout),
        }
    }
}

/// Splits a hybrid's parameters into its own and, per mixer named in `layers`, that mixer's
/// (the `<mixer>.` prefix removed), with the shared width, depth and dropout added.
fn split(combo: &ParamMap) -> Result<(HybridConfig, BTreeMap<String, ParamMap>), ParamError> {
    let own: ParamMap = combo.iter().filter(|(k, _)| !k.contains('.')).map(|(k, v)| (k.clone(), v.clone())).collect();
    let cfg: HybridConfig = crate::params::resolve(&own)?;
    let names = cfg.layer_names();
    if names.is_empty() {
        return Err(ParamError::new("layers", "names no mixer; expected e.g. \"mamba,mamba,transformer\""));
    }
    let mut mixers: BTreeMap<String, ParamMap> = BTreeMap::new();
    for name in &names {
        if super::find(name).is_none() {
            let hint = crate::params::did_you_mean(name, &super::names())
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            return Err(ParamError::new("layers", format!("unknown mixer `{name}`; {hint}see `seqbench models`")));
        }
        if NOT_MIXERS.contains(name) {
            return Err(ParamError::new("layers", format!("`{name}` cannot be a block of a hybrid stack")));
        }
        let values = [serde_yaml::Value::from(cfg.d_model), cfg.n_layers.into(), cfg.dropout.into()];
        mixers.insert(name.to_string(), SHARED.iter().map(|k| k.to_string()).zip(values).collect());
    }
    for (key, value) in combo.iter().filter(|(k, _)| k.contains('.')) {
        let (mixer, param) = key.split_once('.').expect("contains a dot");
        let Some(params) = mixers.get_mut(mixer) else {
            return Err(ParamError::new(
                key.as_str(),
                format!("`{mixer}` is not among the layers ({}); expected <mixer>.<parameter>", names.join(", ")),
            ));
        };
        if SHARED.contains(&param) {
            return Err(ParamError::new(
                key.as_str(),
                format!("`{param}` is the hybrid's own; set it without the prefix"),
            ));
        }
        params.insert(param.to_string(), value.clone());
    }
    Ok((cfg, mixers))
}

/// Each mixer's parameters resolved and checked by its own architecture: (name, full config).
fn resolve_mixers(
    mixers: BTreeMap<String, ParamMap>,
    io: &TaskIo,
) -> Result<BTreeMap<String, serde_json::Value>, ParamError> {
    mixers
        .into_iter()
        .map(|(name, params)| {
            let info = super::find(&name).expect("checked in split");
            let resolved =
                (info.resolve)(&params, io).map_err(|e| ParamError::new(format!("{name}.{}", e.key), e.message))?;
            if name == "transformer" && resolved["positions"] != "rope" && resolved["positions"] != "none" {
                return Err(ParamError::new(
                    "transformer.positions",
                    "a hybrid's attention takes rope or none (absolute positions belong to the embedding)",
                ));
            }
            Ok((name, resolved))
        })
        .collect()
}

fn resolve(combo: &ParamMap, io: &TaskIo) -> Result<serde_json::Value, ParamError> {
    let (cfg, mixers) = split(combo)?;
    cfg.backbone().validate().map_err(|(k, m)| ParamError::new(k, m))?;
    let resolved = resolve_mixers(mixers, io)?;
    let mut out = serde_json::to_value(&cfg).map_err(|e| ParamError::new("", e.to_string()))?;
    let object = out.as_object_mut().expect("a struct serialises to an object");
    for (name, config) in resolved {
        for (key, value) in config.as_object().expect("an object").iter() {
            if !SHARED.contains(&key.as_str()) {
                object.insert(format!("{name}.{key}"), value.clone());
            }
        }
    }
    Ok(out)
}

/// Block `layer`'s mixer from its architecture's resolved config.
type MakeMixer = Box<dyn Fn(&nn::Path, i64) -> Box<dyn Mixer>>;

fn mixer_builder(name: &str, config: serde_json::Value, io: &TaskIo) -> anyhow::Result<MakeMixer> {
    fn typed<C: ArchConfig + 'static>(config: serde_json::Value, io: &TaskIo) -> anyhow::Result<MakeMixer> {
        let cfg: C = serde_json::from_value(config)?;
        let io = *io;
        Ok(Box::new(move |vs, layer| cfg.mixer_in_layer(vs, &io, layer)))
    }
    Ok(match name {
        "lstm" | "gru" => {
            let cfg: RnnConfig = serde_json::from_value(config)?;
            let cell = if name == "lstm" { Cell::Lstm } else { Cell::Gru };
            Box::new(move |vs, _| Box::new(RnnMixer::new(vs, cell, &cfg)))
        }
        "transformer" => {
            let cfg: TransformerConfig = serde_json::from_value(config)?;
            anyhow::ensure!(matches!(cfg.positions, Positions::Rope | Positions::None), "transformer.positions");
            let causal = io.causal;
            Box::new(move |vs, _| Box::new(Attention::new(vs, &cfg, causal)))
        }
        "s4d" => typed::<s4d::S4dConfig>(config, io)?,
        "mamba" => typed::<mamba::MambaConfig>(config, io)?,
        "mamba2" => typed::<mamba2::Mamba2Config>(config, io)?,
        "lru" => typed::<lru::LruConfig>(config, io)?,
        "hawk" => typed::<hawk::HawkConfig>(config, io)?,
        "local_attention" => typed::<local_attention::LocalAttentionConfig>(config, io)?,
        "mingru" => typed::<minrnn::MinGruConfig>(config, io)?,
        "minlstm" => typed::<minrnn::MinLstmConfig>(config, io)?,
        "retnet" => typed::<retnet::RetNetConfig>(config, io)?,
        "gla" => typed::<gla::GlaConfig>(config, io)?,
        "rwkv6" => typed::<rwkv6::Rwkv6Config>(config, io)?,
        "mlstm" => typed::<mlstm::MlstmConfig>(config, io)?,
        "slstm" => typed::<slstm::SlstmConfig>(config, io)?,
        "deltanet" => typed::<deltanet::DeltaNetConfig>(config, io)?,
        "gated_deltanet" => typed::<deltanet::GatedDeltaNetConfig>(config, io)?,
        "deltaproduct" => typed::<deltanet::DeltaProductConfig>(config, io)?,
        other => anyhow::bail!("`{other}` cannot be a block of a hybrid stack"),
    })
}

fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    // Resolved again from the parameters (idempotent on a resolved config): a config written by
    // hand gets every mixer's defaults and checks too.
    let combo: ParamMap = params
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("hybrid parameters must be a map"))?
        .iter()
        .map(|(k, v)| Ok((k.clone(), serde_yaml::to_value(v)?)))
        .collect::<anyhow::Result<_>>()?;
    let (cfg, mixers) = split(&combo).map_err(|e| anyhow::anyhow!("{}: {}", e.key, e.message))?;
    let resolved = resolve_mixers(mixers, io).map_err(|e| anyhow::anyhow!("{}: {}", e.key, e.message))?;
    let builders: BTreeMap<String, MakeMixer> = resolved
        .into_iter()
        .map(|(name, config)| Ok((name.clone(), mixer_builder(&name, config, io)?)))
        .collect::<anyhow::Result<_>>()?;
    let names: Vec<String> = cfg.layer_names().into_iter().map(String::from).collect();
    let make = |path: &nn::Path, i: i64| builders[&names[i as usize % names.len()]](path, i);
    Ok(Box::new(Backbone::new(vs, cfg.backbone(), io, &make)))
}

pub const INFO: ArchInfo = ArchInfo {
    name: "hybrid",
    description:
        "blocks cycling through registered mixers (`layers: \"mamba,mamba,transformer\"`, `<mixer>.<param>` settings)",
    resolve,
    build,
};
