//! The optimiser with parameter groups as the official training set-ups build them: weight decay
//! on matrices only (biases, norm weights, skips and embedding tables exempt, as the state-spaces
//! (S4) and flash-attention training code groups them; nanoGPT decays its embedding too), and each architecture's own exceptions (`ParamRule`: Mamba's A_log and D,
//! S4D's Δ and A at a capped learning rate, the LRU's ν, θ, γ and B at half of it).
use super::precision::GradScaler;
use crate::job::{Optimizer, TrainConfig, WeightDecayOn};
use crate::models::{ParamRule, SeqModel};
use anyhow::{Context, Result};
use std::collections::HashMap;
use tch::{nn, nn::OptimizerConfig, Tensor};

/// One optimiser group: whether it is decayed and its learning rate relative to the schedule's.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub label: String,
    pub decay: bool,
    pub lr_factor: f64,
    pub tensors: usize,
    pub params: i64,
}

/// An optimiser whose learning rate is set per group.
pub struct GroupedOptimizer {
    opt: nn::Optimizer,
    pub groups: Vec<Group>,
    /// The trainable variables (shallow copies), whose gradients loss scaling unscales.
    params: Vec<Tensor>,
}

impl GroupedOptimizer {
    /// Assigns every trainable variable of `vs` to its group (see [`assign_groups`]) and builds
    /// the configured optimiser over them; `peak_lr` resolves learning-rate caps.
    pub fn new(vs: &nn::VarStore, model: &dyn SeqModel, cfg: &TrainConfig, peak_lr: f64) -> Result<Self> {
        let groups = assign_groups(vs, &model.param_rules(), cfg.weight_decay_on, peak_lr);
        let mut opt = match cfg.optimizer {
            Optimizer::Adamw => nn::adamw(0.9, 0.999, cfg.weight_decay).build(vs, peak_lr),
            Optimizer::Adam => nn::adam(0.9, 0.999, cfg.weight_decay).build(vs, peak_lr),
            Optimizer::Sgd => nn::sgd(0.9, 0.0, cfg.weight_decay, false).build(vs, peak_lr),
        }
        .context("building the optimizer")?;
        for (index, group) in groups.iter().enumerate() {
            opt.set_weight_decay_group(index, if group.decay { cfg.weight_decay } else { 0.0 });
        }
        let described: Vec<String> = groups.iter().map(describe).collect();
        tracing::info!("optimizer groups ({:?}): {}", cfg.weight_decay_on, described.join("; "));
        Ok(GroupedOptimizer { opt, groups, params: vs.trainable_variables() })
    }

    /// The schedule's learning rate, scaled per group.
    pub fn set_lr(&mut self, lr: f64) {
        for (index, group) in self.groups.iter().enumerate() {
            self.opt.set_lr_group(index, lr * group.lr_factor);
        }
    }

    /// One update: gradients of `loss`, clipped to `grad_clip` (0: no clipping), then the step.
    pub fn step(&mut self, loss: &Tensor, grad_clip: f64) {
        self.scaled_step(loss, grad_clip, None);
    }

    /// [`Self::step`] with float16 loss scaling when `scaler` is given: the scaled loss's
    /// gradients are unscaled before clipping, and the step is skipped when one is not finite
    /// (as `GradScaler.step`). Returns whether the step was taken.
    pub fn scaled_step(&mut self, loss: &Tensor, grad_clip: f64, scaler: Option<&mut GradScaler>) -> bool {
        self.opt.zero_grad();
        match scaler {
            None => loss.backward(),
            Some(scaler) => {
                (loss * scaler.scale).backward();
                if !scaler.unscale(&self.params) {
                    return false;
                }
            }
        }
        if grad_clip > 0.0 {
            self.opt.clip_grad_norm(grad_clip);
        }
        self.opt.step();
        true
    }
}

fn describe(group: &Group) -> String {
    format!("{}: {} tensors, {} parameters", group.label, group.tensors, group.params)
}

/// The group a parameter belongs to, before numbering.
fn classify(name: &str, dims: usize, rules: &HashMap<&str, ParamRule>, on: WeightDecayOn, peak_lr: f64) -> (bool, f64) {
    if on == WeightDecayOn::All {
        return (true, 1.0);
    }
    match rules.get(name) {
        Some(ParamRule::NoDecay) => (false, 1.0),
        Some(ParamRule::NoDecayLrScaled(factor)) => (false, *factor),
        Some(ParamRule::NoDecayLrAtMost(cap)) => (false, cap.min(peak_lr) / peak_lr),
        None => (dims >= 2, 1.0),
    }
}

/// Sets each trainable variable's optimiser group in `vs` (tch builds one libtorch param group
/// per index) and returns the groups in index order. Must run before the optimiser is built.
pub fn assign_groups(vs: &nn::VarStore, rules: &[(String, ParamRule)], on: WeightDecayOn, peak_lr: f64) -> Vec<Group> {
    let rules: HashMap<&str, ParamRule> = rules.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    let mut variables = vs.variables_.lock().expect("the var store's lock is never poisoned");
    // Trainable variables carry no name: match them to their names by storage address.
    let names: HashMap<usize, String> =
        variables.named_variables.iter().map(|(name, t)| (t.data_ptr() as usize, name.clone())).collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut sorted: Vec<(String, usize)> = variables
        .trainable_variables
        .iter()
        .enumerate()
        .map(|(i, var)| (names.get(&(var.tensor.data_ptr() as usize)).cloned().unwrap_or_default(), i))
        .collect();
    sorted.sort();
    for (name, i) in sorted {
        let var = &mut variables.trainable_variables[i];
        let (decay, lr_factor) = classify(&name, var.tensor.dim(), &rules, on, peak_lr);
        let index = match groups.iter().position(|g| g.decay == decay && g.lr_factor == lr_factor) {
            Some(index) => index,
            None => {
                groups.push(Group { label: label(decay, lr_factor), decay, lr_factor, tensors: 0, params: 0 });
                groups.len() - 1
            }
        };
        var.group = index;
        groups[index].tensors += 1;
        groups[index].params += var.tensor.numel() as i64;
    }
    groups
}

fn label(decay: bool, lr_factor: f64) -> String {
    let decay = if decay { "decay" } else { "no decay" };
    if lr_factor == 1.0 {
        decay.to_string()
    } else {
        format!("{decay}, lr × {lr_factor}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{find, TaskIo};
    use serde_json::json;

    /// (decay, lr factor) of every parameter of a freshly built model, by name.
    fn rules_of(arch: &str, params: serde_json::Value, on: WeightDecayOn, lr: f64) -> HashMap<String, (bool, f64)> {
        let io = TaskIo::per_token(16, 16, 8, true);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let info = find(arch).unwrap();
        let config = (info.resolve)(&serde_json::from_value(params).unwrap(), &io).unwrap();
        let model = (info.build)(&vs.root(), &config, &io).unwrap();
        let groups = assign_groups(&vs, &model.param_rules(), on, lr);
        let variables = vs.variables_.lock().unwrap();
        let group_of: HashMap<usize, usize> =
            variables.trainable_variables.iter().map(|v| (v.tensor.data_ptr() as usize, v.group)).collect();
        variables
            .named_variables
            .iter()
            .map(|(name, t)| {
                let g = &groups[group_of[&(t.data_ptr() as usize)]];
                (name.clone(), (g.decay, g.lr_factor))
            })
            .collect()
    }

    #[test]
    fn matrices_are_decayed_and_the_official_exceptions_are_not() {
        let mamba = rules_of("mamba", json!({"d_model": 16}), WeightDecayOn::Matrices, 1e-3);
        assert_eq!(mamba["blocks.0.mixer.in_proj.weight"], (true, 1.0));
        assert_eq!(mamba["blocks.0.mixer.a_log"], (false, 1.0), "_no_weight_decay in mamba_simple.py");
        assert_eq!(mamba["blocks.0.mixer.d_skip"], (false, 1.0));
        assert_eq!(mamba["blocks.0.mixer.dt_proj.bias"], (false, 1.0), "biases");
        assert_eq!(mamba["blocks.1.norm1.weight"], (false, 1.0), "norms");
        assert_eq!(mamba["embed.weight"], (false, 1.0), "embedding tables");
        assert_eq!(mamba["head.weight"], (true, 1.0));

        let s4d = rules_of("s4d", json!({"d_model": 16}), WeightDecayOn::Matrices, 0.01);
        assert_eq!(s4d["blocks.0.mixer.log_dt"], (false, 0.1), "min(0.001, lr) at lr 0.01");
        assert_eq!(s4d["blocks.0.mixer.a_im"], (false, 0.1));
        assert_eq!(s4d["blocks.0.mixer.c_re"], (true, 1.0), "C is an ordinary parameter in s4d.py");
        let s4d_low = rules_of("s4d", json!({"d_model": 16}), WeightDecayOn::Matrices, 5e-4);
        assert_eq!(s4d_low["blocks.0.mixer.a_log_re"], (false, 1.0), "below the cap the base lr applies");

        let lru = rules_of("lru", json!({"d_model": 16}), WeightDecayOn::Matrices, 1e-3);
        for name in ["nu_log", "theta_log", "gamma_log", "b_re", "b_im"] {
            assert_eq!(lru[&format!("blocks.0.mixer.{name}")], (false, 0.5), "{name}");
        }
        assert_eq!(lru["blocks.0.mixer.c_re"], (true, 1.0));

        // BlinkDL's RWKV-7 trainer: only `*.weight` matrices decay there (not r_k or the LoRAs'
        // w1, w2, …), and w0 (the decay LoRA's bias) trains at 2× the learning rate.
        let rwkv7 = rules_of("rwkv7", json!({"d_model": 32, "head_dim": 16}), WeightDecayOn::Matrices, 1e-3);
        assert_eq!(rwkv7["blocks.1.mixer.r_proj.weight"], (true, 1.0));
        assert_eq!(rwkv7["blocks.1.mixer.r_k"], (false, 1.0));
        assert_eq!(rwkv7["blocks.1.mixer.w_lora.lora.2.bias"], (false, 2.0));
        for lora in ["w_lora", "a_lora", "v_lora", "g_lora"] {
            assert_eq!(rwkv7[&format!("blocks.1.mixer.{lora}.lora.0.weight")], (false, 1.0), "{lora}");
        }
    }

    #[test]
    fn all_decays_everything_at_one_learning_rate() {
        let s4d = rules_of("s4d", json!({"d_model": 16}), WeightDecayOn::All, 0.01);
        assert!(s4d.values().all(|&rule| rule == (true, 1.0)), "{s4d:?}");
    }
}
