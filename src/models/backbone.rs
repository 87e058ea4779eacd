//! The shared backbone: token embedding (+ optional learned positions) → N pre-norm blocks
//! (norm → mixer → residual → norm → MLP → residual) → final norm → per-token head.
use super::init::{rescale_redraw, torch_linear};
use super::{Head, Mixer, MixerState, ParamRule, SeqModel};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

/// Fields every architecture shares; each arch config repeats them (serde's `flatten` would
/// disable `deny_unknown_fields`) and converts with `backbone()`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BackboneConfig {
    pub d_model: i64,
    pub n_layers: i64,
    /// MLP hidden width as a multiple of d_model; 0 removes the MLP sub-block.
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Absolute positions added to the input (attention needs some; recurrences do not).
    pub absolute_positions: AbsolutePositions,
    /// The pre-norms and the final norm.
    pub norm: Norm,
    /// ε of every norm (1e-5 as torch.nn.LayerNorm and Mamba's RMSNorm; torchscale uses 1e-6).
    pub norm_eps: f64,
    /// How the backbone's own layers start.
    pub init: BackboneInit,
    /// Griffin's gated MLP: fc1 to twice the hidden width, GeLU (tanh) of one half times the
    /// other, then fc2; otherwise fc1, GeLU, fc2.
    pub gated_mlp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// torch.nn.LayerNorm: mean and variance, affine weight and bias.
    Layer,
    /// RMSNorm: x / √(mean(x²) + ε) · weight, no bias (Mamba, RetNet).
    Rms,
}

/// Initialisation of the parts seqbench adds around a mixer (embedding, MLP, head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackboneInit {
    /// PyTorch's module defaults: `nn.Embedding` N(0, 1), `nn.Linear` U(±1/√fan_in).
    Torch,
    /// Mamba's language model (`_init_weights` in state-spaces/mamba
    /// `models/mixer_seq_simple.py`): embeddings N(0, 0.02²), Linear biases zero, and the
    /// residual branch's last layer (the MLP's fc2, like the mixer's out_proj) redrawn and
    /// divided by √n_layers.
    MambaLm,
    /// flash-linear-attention's models (`_init_weights` in `fla/models/*/modeling_*.py`):
    /// embeddings and every Linear weight N(0, 0.02²), biases zero, no residual rescaling.
    FlaLm,
    /// Griffin's (google-deepmind/recurrentgemma `torch/`): embeddings N(0, 1/d), every Linear
    /// weight N(0, 1/fan_in) with biases zero, and the residual branch's last layer (the MLP's
    /// fc2) N(0, (2/n_layers)/fan_in), `final_w_init_variance_scale`.
    Griffin,
}

impl BackboneConfig {
    /// The backbone of a flash-linear-attention model: its norms and fla's initialisation.
    pub fn fla(d_model: i64, n_layers: i64, mlp_ratio: i64, dropout: f64, norm: Norm, norm_eps: f64) -> Self {
        BackboneConfig {
            norm,
            norm_eps,
            init: BackboneInit::FlaLm,
            ..BackboneConfig::plain(d_model, n_layers, mlp_ratio, dropout)
        }
    }

    /// Griffin's residual block (recurrentgemma `ResidualBlock`): RMSNorm ε 1e-6, the gated GeLU
    /// MLP and Griffin's initialisation.
    pub fn griffin(d_model: i64, n_layers: i64, mlp_ratio: i64, dropout: f64) -> Self {
        BackboneConfig {
            norm: Norm::Rms,
            norm_eps: 1e-6,
            init: BackboneInit::Griffin,
            gated_mlp: true,
            ..BackboneConfig::plain(d_model, n_layers, mlp_ratio, dropout)
        }
    }

    /// The plain backbone of a recurrent or SSM model (no position embeddings).
    pub fn plain(d_model: i64, n_layers: i64, mlp_ratio: i64, dropout: f64) -> Self {
        BackboneConfig {
            d_model,
            n_layers,
            mlp_ratio,
            dropout,
            absolute_positions: AbsolutePositions::None,
            norm: Norm::Layer,
            norm_eps: 1e-5,
            init: BackboneInit::Torch,
            gated_mlp: false,
        }
    }

    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.d_model < 1 {
            return Err(("d_model", format!("must be at least 1, got {}", self.d_model)));
        }
        if self.n_layers < 1 {
            return Err(("n_layers", format!("must be at least 1, got {}", self.n_layers)));
        }
        if self.mlp_ratio < 0 {
            return Err(("mlp_ratio", format!("must be ≥ 0, got {}", self.mlp_ratio)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(("dropout", format!("must be in [0, 1), got {}", self.dropout)));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbsolutePositions {
    None,
    /// A learned embedding per position.
    Learned,
    /// The fixed sin/cos table of "Attention Is All You Need".
    Sinusoidal,
}

/// PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)) for the given
/// positions (l,) → (l, d).
fn sinusoidal_table(positions: &Tensor, d: i64) -> Tensor {
    let opts = (Kind::Float, positions.device());
    let inv_freq = (Tensor::arange_start_step(0, d, 2, opts) * (-(10_000f64.ln()) / d as f64)).exp();
    let angles = positions.to_kind(Kind::Float).unsqueeze(1) * inv_freq.unsqueeze(0); // (l, ⌈d/2⌉)
    let table = Tensor::stack(&[angles.sin(), angles.cos()], 2).view([positions.size()[0], -1]);
    table.narrow(1, 0, d)
}

struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    gated: bool,
}

/// A LayerNorm or an RMSNorm over the last dimension.
#[derive(Debug)]
enum NormLayer {
    Layer(nn::LayerNorm),
    Rms { weight: Tensor, eps: f64 },
}

impl NormLayer {
    fn new(vs: nn::Path, d: i64, norm: Norm, eps: f64) -> Self {
        match norm {
            Norm::Layer => {
                NormLayer::Layer(nn::layer_norm(vs, vec![d], nn::LayerNormConfig { eps, ..Default::default() }))
            }
            Norm::Rms => NormLayer::Rms { weight: vs.ones("weight", &[d]), eps },
        }
    }
}

impl Module for NormLayer {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            NormLayer::Layer(ln) => ln.forward(xs),
            NormLayer::Rms { weight, eps } => {
                let mean_square = xs.square().mean_dim([-1i64].as_slice(), true, None);
                xs * (mean_square + *eps).rsqrt() * weight
            }
        }
    }
}

struct Block {
    norm1: NormLayer,
    mixer: Box<dyn Mixer>,
    norm2: NormLayer,
    mlp: Option<Mlp>,
}

/// Token embedding, or a linear projection of real-valued features; both named `embed`.
enum Input {
    Tokens(nn::Embedding),
    Features(nn::Linear),
}

pub struct Backbone {
    cfg: BackboneConfig,
    embed: Input,
    /// Head::Forecast's map over time (seq_len → horizon).
    time_proj: Option<nn::Linear>,
    /// Head::PairMatch's MLP layer over [u, v, u·v, u−v] (4·d → d).
    pair_proj: Option<nn::Linear>,
    positions: Option<nn::Embedding>,
    blocks: Vec<Block>,
    norm_f: NormLayer,
    head: nn::Linear,
    num_classes: i64,
    head_kind: Head,
    pad_id: Option<i64>,
}

impl Backbone {
    /// `make_mixer(path, layer_index)` builds the mixer of each block under `blocks.{i}.mixer`.
    pub fn new(
        vs: &nn::Path,
        cfg: BackboneConfig,
        io: &super::TaskIo,
        make_mixer: &dyn Fn(&nn::Path, i64) -> Box<dyn Mixer>,
    ) -> Self {
        let d = cfg.d_model;
        let norm = |path: nn::Path| NormLayer::new(path, d, cfg.norm, cfg.norm_eps);
        let linear = |path: nn::Path, inputs: i64, outputs: i64| torch_linear(&path, inputs, outputs, true);
        let embed_init = match cfg.init {
            BackboneInit::Torch => nn::Init::Randn { mean: 0.0, stdev: 1.0 },
            BackboneInit::MambaLm | BackboneInit::FlaLm => nn::Init::Randn { mean: 0.0, stdev: 0.02 },
            BackboneInit::Griffin => nn::Init::Randn { mean: 0.0, stdev: (d as f64).sqrt().recip() },
        };
        let embedding = |path: nn::Path, n: i64| {
            nn::embedding(path, n, d, nn::EmbeddingConfig { ws_init: embed_init, ..Default::default() })
        };
        let embed = if io.input_features > 0 {
            Input::Features(linear(vs / "embed", io.input_features, d))
        } else {
            Input::Tokens(embedding(vs / "embed", io.vocab_size))
        };
        let time_proj = match io.head {
            Head::Forecast { horizon } => Some(linear(vs / "time_proj", io.seq_len, horizon)),
            _ => None,
        };
        let pair_proj = (io.head == Head::PairMatch).then(|| linear(vs / "pair_proj", 4 * d, d));
        let positions =
            (cfg.absolute_positions == AbsolutePositions::Learned).then(|| embedding(vs / "positions", io.seq_len));
        let blocks = (0..cfg.n_layers)
            .map(|i| {
                let bp = vs / "blocks" / i;
                let hidden = cfg.mlp_ratio * d;
                let mlp = (cfg.mlp_ratio > 0).then(|| Mlp {
                    fc1: linear(&bp / "mlp" / "fc1", d, if cfg.gated_mlp { 2 * hidden } else { hidden }),
                    fc2: linear(&bp / "mlp" / "fc2", hidden, d),
                    gated: cfg.gated_mlp,
                });
                Block {
                    norm1: norm(&bp / "norm1"),
                    mixer: make_mixer(&(&bp / "mixer"), i),
                    norm2: norm(&bp / "norm2"),
                    mlp,
                }
            })
            .collect();
        let backbone = Backbone {
            cfg,
            embed,
            time_proj,
            pair_proj,
            positions,
            blocks,
            norm_f: norm(vs / "norm_f"),
            head: linear(vs / "head", d, io.num_classes),
            num_classes: io.num_classes,
            head_kind: io.head,
            pad_id: io.pad_id,
        };
        match cfg.init {
            BackboneInit::Torch => {}
            BackboneInit::MambaLm => backbone.apply_mamba_lm_init(),
            BackboneInit::FlaLm => backbone.apply_fla_init(),
            BackboneInit::Griffin => backbone.apply_griffin_init(),
        }
        backbone
    }

    /// Every Linear the backbone owns (not the mixers').
    fn own_linears(&self) -> Vec<&nn::Linear> {
        let mut linears: Vec<&nn::Linear> = vec![&self.head];
        linears.extend(self.time_proj.iter().chain(self.pair_proj.iter()));
        if let Input::Features(p) = &self.embed {
            linears.push(p);
        }
        for mlp in self.blocks.iter().filter_map(|b| b.mlp.as_ref()) {
            linears.extend([&mlp.fc1, &mlp.fc2]);
        }
        linears
    }

    /// fla's `_init_weights` on the backbone's Linears: weights N(0, 0.02²), biases zero.
    fn apply_fla_init(&self) {
        tch::no_grad(|| {
            for linear in self.own_linears() {
                let _ = linear.ws.shallow_clone().normal_(0.0, 0.02);
                if let Some(bias) = &linear.bs {
                    let _ = bias.shallow_clone().zero_();
                }
            }
        });
    }

    /// Griffin's initialisation of the backbone's Linears: N(0, 1/fan_in), the MLP's fc2
    /// N(0, (2/n_layers)/fan_in), biases zero (the embedding's N(0, 1/d) is set at creation).
    fn apply_griffin_init(&self) {
        let final_scale = 2.0 / self.cfg.n_layers as f64;
        let fc2s: Vec<&nn::Linear> = self.blocks.iter().filter_map(|b| b.mlp.as_ref()).map(|m| &m.fc2).collect();
        tch::no_grad(|| {
            for linear in self.own_linears() {
                let fan_in = linear.ws.size()[1] as f64;
                let scale = if fc2s.iter().any(|f| std::ptr::eq(*f, linear)) { final_scale } else { 1.0 };
                let _ = linear.ws.shallow_clone().normal_(0.0, (scale / fan_in).sqrt());
                if let Some(bias) = &linear.bs {
                    let _ = bias.shallow_clone().zero_();
                }
            }
        });
    }

    /// The parts of Mamba's `_init_weights` that reach the backbone: every Linear bias zero, the
    /// MLP's fc2 redrawn and divided by √n_layers (the embedding's N(0, 0.02²) is set at
    /// creation; the mixer rescales its own out_proj).
    fn apply_mamba_lm_init(&self) {
        for mlp in self.blocks.iter().filter_map(|b| b.mlp.as_ref()) {
            rescale_redraw(&mlp.fc2.ws, (self.cfg.n_layers as f64).sqrt());
        }
        tch::no_grad(|| {
            for bias in self.own_linears().iter().filter_map(|l| l.bs.as_ref()) {
                let _ = bias.shallow_clone().zero_();
            }
        });
    }

    /// Pools (b, l, d) into (b, 1, d) (or maps it to (b, horizon, d)) as the head requires;
    /// mask (b, l) marks real positions.
    fn pool(&self, h: Tensor, mask: Option<&Tensor>) -> Tensor {
        self.pool_as(self.head_kind, h, mask)
    }

    fn pool_as(&self, head: Head, h: Tensor, mask: Option<&Tensor>) -> Tensor {
        let len = h.size()[1];
        match (head, mask) {
            (Head::PerToken, _) => h,
            (Head::Forecast { .. }, _) => {
                let proj = self.time_proj.as_ref().expect("forecast heads have a time projection");
                proj.forward(&h.transpose(1, 2)).transpose(1, 2)
            }
            (Head::PairMatch, _) => {
                let pooled = self.pool_as(Head::MeanPool, h, mask);
                let d = pooled.size()[2];
                let pair = pooled.view([-1, 2, d]);
                let (u, v) = (pair.select(1, 0), pair.select(1, 1));
                let features = Tensor::cat(&[&u, &v, &(&u * &v), &(&u - &v)], -1);
                let proj = self.pair_proj.as_ref().expect("pair heads have a projection");
                proj.forward(&features).gelu("none").unsqueeze(1)
            }
            (Head::MeanPool, None) => h.mean_dim([1i64].as_slice(), true, None),
            (Head::MeanPool, Some(m)) => {
                let count = m.sum_dim_intlist([1i64].as_slice(), true, None).clamp_min(1.0).unsqueeze(-1);
                (h * m.unsqueeze(-1)).sum_dim_intlist([1i64].as_slice(), true, None) / count
            }
            (Head::LastPool, None) => h.narrow(1, len - 1, 1),
            (Head::LastPool, Some(m)) => {
                let last = (m.sum_dim_intlist([1i64].as_slice(), false, Kind::Int64) - 1).clamp_min(0);
                let index = last.view([-1, 1, 1]).expand([-1, 1, h.size()[2]], false);
                h.gather(1, &index, false)
            }
        }
    }
}

impl Block {
    // `h += x` on a tch Tensor is an in-place add, which would overwrite activations that
    // autograd saved for the backward pass (LayerNorm's input): keep `h = h + x`.
    #[allow(clippy::assign_op_pattern)]
    /// The MLP half of the block, shared by the parallel and the step forms.
    fn mlp_residual(&self, mut h: Tensor, dropout: f64, train: bool) -> Tensor {
        if let Some(mlp) = &self.mlp {
            let up = mlp.fc1.forward(&self.norm2.forward(&h));
            let hidden = if mlp.gated {
                // Griffin's MLPBlock: gelu_tanh(out[0]) * out[1].
                let halves = up.chunk(2, -1);
                halves[0].gelu("tanh") * &halves[1]
            } else {
                up.gelu("none")
            };
            h = h + mlp.fc2.forward(&hidden).dropout(dropout, train);
        }
        h
    }
}

impl Backbone {
    /// Inputs of a whole sequence ((b, l) tokens or (b, l, f) features) or of one step ((b,) or
    /// (b, f)) starting at `first_pos` → (b, l, d) or (b, d).
    fn embed_tokens(&self, xs: &Tensor, first_pos: i64) -> Tensor {
        let (h, whole_sequence) = match &self.embed {
            Input::Tokens(e) => (e.forward(xs), xs.dim() == 2),
            Input::Features(p) => (p.forward(xs), xs.dim() == 3),
        };
        let len = if whole_sequence { xs.size()[1] } else { 1 };
        let idx = || Tensor::arange_start(first_pos, first_pos + len, (Kind::Int64, xs.device()));
        let p = match (&self.positions, self.cfg.absolute_positions) {
            (Some(pos), _) => pos.forward(&idx()),
            (None, AbsolutePositions::Sinusoidal) => sinusoidal_table(&idx(), self.cfg.d_model).to_kind(h.kind()),
            (None, _) => return h,
        };
        if whole_sequence {
            h + p.unsqueeze(0)
        } else {
            h + p.squeeze_dim(0)
        }
    }
}

impl SeqModel for Backbone {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // Two documents per row are encoded as two rows of their own.
        let split_pair;
        let xs = if self.head_kind == Head::PairMatch {
            split_pair = xs.reshape([-1, xs.size()[1] / 2]);
            &split_pair
        } else {
            xs
        };
        let mask = self.pad_id.map(|pad| xs.ne(pad).to_kind(self.head.ws.kind()));
        let mut h = self.embed_tokens(xs, 0);
        let p = self.cfg.dropout;
        for block in &self.blocks {
            let x = block.norm1.forward(&h);
            let mixed = match &mask {
                Some(m) => block.mixer.forward_masked(&x, m, train),
                None => block.mixer.forward_t(&x, train),
            };
            h = block.mlp_residual(h + mixed.dropout(p, train), p, train);
        }
        self.head.forward(&self.pool(self.norm_f.forward(&h), mask.as_ref()))
    }

    fn max_positions(&self) -> Option<i64> {
        self.positions.as_ref().map(|p| p.ws.size()[0])
    }

    fn can_step(&self) -> bool {
        if self.head_kind != Head::PerToken {
            return false;
        }
        // Probe a one-token step on a throwaway state: cheap, and the single source of truth.
        let x = Tensor::zeros([1, self.cfg.d_model], (tch::Kind::Float, self.head.ws.device()));
        tch::no_grad(|| self.blocks.iter().all(|b| b.mixer.step(&x, 0, &mut MixerState::default()).is_some()))
    }

    fn step(&self, tokens: &Tensor, pos: i64, states: &mut Vec<MixerState>) -> Tensor {
        states.resize_with(self.blocks.len(), MixerState::default);
        let mut h = self.embed_tokens(tokens, pos);
        for (block, state) in self.blocks.iter().zip(states.iter_mut()) {
            let mixed = block
                .mixer
                .step(&block.norm1.forward(&h), pos, state)
                .expect("step called on a model that cannot step");
            h = block.mlp_residual(h + mixed, 0.0, false);
        }
        self.head.forward(&self.norm_f.forward(&h))
    }

    /// What a step carries: the blocks' mixer states summed.
    fn state_size(&self, seq_len: i64) -> Option<f64> {
        // A mixer that cannot say (a Python layer) makes the model's size unknown.
        let size: f64 = self.blocks.iter().map(|b| b.mixer.state_size(seq_len)).sum();
        size.is_finite().then_some(size)
    }

    /// Per block: mixer + MLP (4·r·d², 6·r·d² gated); plus the head (2·d·classes). Norms,
    /// residuals and the embedding lookup are O(d) and left out.
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        // A forecasting head's time map (2·L·horizon per channel, per example) is left out: it is
        // per example, not per token, and small next to the blocks.
        let d = self.cfg.d_model as f64;
        let mlp = if self.cfg.gated_mlp { 6.0 } else { 4.0 } * self.cfg.mlp_ratio as f64 * d * d;
        let blocks: f64 = self.blocks.iter().map(|b| b.mixer.flops_per_token(seq_len) + mlp).sum();
        blocks + 2.0 * d * self.num_classes as f64
    }

    /// The kernel paths of the blocks' mixers, each once, in block order.
    fn implementation(&self, device: tch::Device, kind: tch::Kind) -> String {
        let mut paths: Vec<String> = Vec::new();
        for block in &self.blocks {
            let path = block.mixer.implementation(device, kind);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        paths.join("; ")
    }

    /// Embedding tables are not decayed (state-spaces' and flash-attention's optimiser groups;
    /// nanoGPT differs, decaying every 2-D parameter); each mixer adds its own rules under
    /// `blocks.{i}.mixer`.
    fn param_rules(&self) -> Vec<(String, ParamRule)> {
        let mut rules = Vec::new();
        if let Input::Tokens(_) = self.embed {
            rules.push(("embed.weight".to_string(), ParamRule::NoDecay));
        }
        if self.positions.is_some() {
            rules.push(("positions.weight".to_string(), ParamRule::NoDecay));
        }
        for (i, block) in self.blocks.iter().enumerate() {
            for (name, rule) in block.mixer.param_rules() {
                rules.push((format!("blocks.{i}.mixer.{name}"), rule));
            }
        }
        rules
    }
}
