//! One engine for the matrix-state linear recurrences (GLA, the delta-rule family, RetNet, …):
//!
//! ```text
//! S_t = α_t ⊙ S_{t−1} + k_t v_tᵀ                          (no delta rule)
//! S_t = α_t ⊙ (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ    (delta rule)
//! o_t = S_tᵀ q_t
//! ```
//!
//! with S of (d_k × d_v) per head and the decay α_t none, fixed per head, a data-dependent
//! scalar per head, or a data-dependent vector over d_k (scaling S's rows), given in log space.
//! Three forms compute the same function: [`naive`] (a token loop, the reference), [`chunkwise`]
//! (matmuls inside chunks, the state carried across them; the delta rule through the UT/WY
//! representation, one triangular solve per chunk) and [`step`] (one token, for generation).
//! Every exponent the chunkwise form takes is a decay between two positions, so ≤ 0: nothing
//! overflows however strong the decay. The one exception is deliberate: a per-dimension decay's
//! scores are factored into q ⊙ e^{b} and k ⊙ e^{−b} (b from the chunk's start), checked first
//! to stay within [`factor_limit`], the chunk halved until they do ([`halved`]). q is used as
//! given (callers scale it).
use tch::{Kind, Tensor};

pub mod dplr;

/// What runs a mixer on this engine, for its record's `implementation`: the chunkwise form in
/// libtorch ops, without a fused Triton/CUDA kernel as fla's.
pub fn describe(chunk: i64) -> String {
    format!("chunkwise in libtorch ops (chunks of {chunk}), no fused kernel")
}

/// [`describe`] for the mixers with a per-dimension decay, whose scores are factored and whose
/// chunk a call may halve: a run before the factored form differs from one after it, and
/// `compare` warns when two runs' implementations differ.
pub fn describe_factored(chunk: i64) -> String {
    format!(
        "chunkwise in libtorch ops (chunks of {chunk}, decayed scores factored, a chunk halved while it decays past \
         e^-40), no fused kernel"
    )
}

/// The decay α_t, as log α (≤ 0).
pub enum Decay {
    /// α = 1.
    None,
    /// One fixed log α per head: (heads,).
    Head(Tensor),
    /// A data-dependent log α per head and step: (b, heads, L).
    Scalar(Tensor),
    /// A data-dependent log α per key dimension: (b, heads, L, d_k).
    Vector(Tensor),
}

/// One sequence's inputs: q, k (b, heads, L, d_k), v (b, heads, L, d_v), the decay, and β
/// (b, heads, L) for the delta rule.
pub struct Inputs {
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
    pub decay: Decay,
    pub beta: Option<Tensor>,
}

impl Inputs {
    /// Every tensor in `kind`.
    fn to_kind(&self, kind: Kind) -> Inputs {
        let decay = match &self.decay {
            Decay::None => Decay::None,
            Decay::Head(g) => Decay::Head(g.to_kind(kind)),
            Decay::Scalar(g) => Decay::Scalar(g.to_kind(kind)),
            Decay::Vector(g) => Decay::Vector(g.to_kind(kind)),
        };
        Inputs {
            q: self.q.to_kind(kind),
            k: self.k.to_kind(kind),
            v: self.v.to_kind(kind),
            decay,
            beta: self.beta.as_ref().map(|b| b.to_kind(kind)),
        }
    }
}

/// The log decay in a form with a key dimension to broadcast against: (b, heads, L, 1) or
/// (b, heads, L, d_k).
fn log_decay(inputs: &Inputs) -> Option<Tensor> {
    let (b, h, l) = (inputs.k.size()[0], inputs.k.size()[1], inputs.k.size()[2]);
    match &inputs.decay {
        Decay::None => None,
        Decay::Head(g) => Some(g.view([1, h, 1, 1]).expand([b, h, l, 1], false)),
        Decay::Scalar(g) => Some(g.unsqueeze(-1)),
        Decay::Vector(g) => Some(g.shallow_clone()),
    }
}

fn check(inputs: &Inputs) {
    assert!(
        !(matches!(inputs.decay, Decay::Vector(_)) && inputs.beta.is_some()),
        "the delta rule is implemented with scalar decays only"
    );
}

fn zero_state(inputs: &Inputs) -> Tensor {
    let (q, v) = (&inputs.q, &inputs.v);
    Tensor::zeros([q.size()[0], q.size()[1], q.size()[3], v.size()[3]], (q.kind(), q.device()))
}

/// One token: q, k (b, heads, d_k), v (b, heads, d_v), log α (b, heads, 1) or (b, heads, d_k)
/// (None: no decay), β (b, heads) → (o (b, heads, d_v), the new state).
pub fn step(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    log_alpha: Option<&Tensor>,
    beta: Option<&Tensor>,
    state: &Tensor,
) -> (Tensor, Tensor) {
    let decayed = match log_alpha {
        Some(g) => state * g.exp().unsqueeze(-1),
        None => state.shallow_clone(),
    };
    let value = match beta {
        // v' = β (v − Sᵀk) after the decay (fla's naive gated delta rule).
        Some(beta) => {
            (v - (&decayed * k.unsqueeze(-1)).sum_dim_intlist([-2i64].as_slice(), false, None)) * beta.unsqueeze(-1)
        }
        None => v.shallow_clone(),
    };
    // A new tensor, not `+=`: the old state may be the caller's (or saved for autograd).
    let s = decayed + k.unsqueeze(-1) * value.unsqueeze(-2);
    let o = (q.unsqueeze(-1) * &s).sum_dim_intlist([-2i64].as_slice(), false, None);
    (o, s)
}

/// The token loop: (o (b, heads, L, d_v), final state (b, heads, d_k, d_v)).
pub fn naive(inputs: &Inputs, initial: Option<&Tensor>) -> (Tensor, Tensor) {
    check(inputs);
    let log_alpha = log_decay(inputs);
    let mut state = initial.map_or_else(|| zero_state(inputs), |s| s.shallow_clone());
    let len = inputs.q.size()[2];
    let mut outputs = Vec::with_capacity(len as usize);
    for t in 0..len {
        let at = |x: &Tensor| x.select(2, t);
        let g = log_alpha.as_ref().map(at);
        let beta = inputs.beta.as_ref().map(at);
        let (o, s) = step(&at(&inputs.q), &at(&inputs.k), &at(&inputs.v), g.as_ref(), beta.as_ref(), &state);
        outputs.push(o);
        state = s;
    }
    (Tensor::stack(&outputs, 2), state)
}

/// True where j > i in an (n, n) grid of (i, j): the positions every causal form zeroes.
fn above_diagonal(n: i64, device: tch::Device) -> Tensor {
    Tensor::ones([n, n], (Kind::Bool, device)).triu(1)
}

/// The rows of positions every−1, 2·every−1, … along dim −2 of x (…, rows, d): (…, rows/every,
/// d), a view. The positions whose output is read when each token takes `every` steps.
fn last_of_each(x: &Tensor, every: i64) -> Tensor {
    if every == 1 {
        return x.shallow_clone();
    }
    let mut shape = x.size();
    let d = shape.len();
    shape.splice(d - 2..d - 1, [shape[d - 2] / every, every]);
    x.reshape(shape.as_slice()).select((d - 1) as i64, every - 1)
}

/// exp(b_i − b_j) for i ≥ j, 0 above the diagonal, from cumulative log decays b (…, n, 1):
/// (…, n, n). Masked before the exponential, so no exponent is positive.
fn relative_decay(b: &Tensor) -> Tensor {
    let n = b.size()[b.dim() - 2];
    let gap = b - b.transpose(-1, -2); // b_i − b_j
    gap.masked_fill(&above_diagonal(n, b.device()), f64::NEG_INFINITY).exp()
}

/// The largest decay within a chunk (−b_last, in log space) at which the pair products are
/// factored: e^{±limit} stays far inside the dtype's normal range (float32's ends at e^{±87}),
/// so neither factor overflows or turns denormal.
pub(crate) fn factor_limit(kind: Kind) -> f64 {
    if kind == Kind::Double {
        300.0
    } else {
        40.0
    }
}

/// Whether every chunk's cumulative log decays `b` (from its start, ≤ 0) stay within
/// [`factor_limit`]. One reduction and one read of its value per call.
pub(crate) fn factorable(b: &Tensor) -> bool {
    -b.min().double_value(&[]) <= factor_limit(b.kind())
}

/// The shortest chunk that [`halved`] goes down to: below it the pairwise form is cheap.
const SHORTEST_HALVED: i64 = 4;

/// Half of chunk `c` (at least `every`), when that is still at least [`SHORTEST_HALVED`]: a
/// call whose per-dimension decays are not [`factorable`] at `c` runs again with shorter chunks
/// (the result is the same at any chunk), so that a few fast-decaying channels cost a shorter
/// chunk, not the (c, c, d_k) pairwise form at a long one. At L = 4,096 on one thread, RWKV-6
/// and HGRN2 set to chunks of 64 (their first layers' decays exceed the limit there) trained at
/// 13.1k and 15.9k tokens/s, halved to 32; with the pairwise form at 64, 2.2k each.
pub(crate) fn halved(c: i64, every: i64) -> Option<i64> {
    let half = c / 2;
    (half >= SHORTEST_HALVED.max(every)).then_some(half)
}

/// Σ_d q_id k_jd exp(b_id − b_jd) for the row positions of `q` (every `every`-th, as
/// [`last_of_each`]) against every key j at or before them, 0 after: a per-dimension decay
/// weighs each key dimension apart, formed exactly as (rows, n, d_k) with the exponent masked
/// first.
fn vector_decayed_scores(q: &Tensor, k: &Tensor, b: &Tensor, every: i64) -> Tensor {
    let n = k.size()[k.dim() - 2];
    let gap = last_of_each(b, every).unsqueeze(-2) - b.unsqueeze(-3); // (…, rows, n, d_k)
    let future = last_of_each(&above_diagonal(n, k.device()), every).unsqueeze(-1); // broadcast over d_k
    let weights = gap.masked_fill(&future, f64::NEG_INFINITY).exp();
    (q.unsqueeze(-2) * k.unsqueeze(-3) * weights).sum_dim_intlist([-1i64].as_slice(), false, None)
}

/// (b, heads, rows, d) → (b, heads, n, rows per chunk, d), the tail padded with zeros.
fn chunk_rows(x: &Tensor, batch: i64, heads: i64, n: i64, per_chunk: i64) -> Tensor {
    let rows = x.size()[2];
    let padded =
        if n * per_chunk > rows { x.constant_pad_nd([0, 0, 0, n * per_chunk - rows]) } else { x.shallow_clone() };
    padded.reshape([batch, heads, n, per_chunk, -1])
}

/// The chunkwise-parallel form, chunks of `chunk` positions: (o, final state), equal to
/// [`naive`]'s. Everything that does not need the state is computed for all chunks at once
/// (the scores, the decays, the UT transform's one batched triangular solve); only the state's
/// hand-over from chunk to chunk is a loop, a few ops per chunk. A tail shorter than a chunk is
/// padded with k = v = 0, β = 0 and no decay, which leaves the state as it was.
pub fn chunkwise(inputs: &Inputs, chunk: i64, initial: Option<&Tensor>) -> (Tensor, Tensor) {
    chunkwise_every(inputs, 1, chunk, initial)
}

/// [`chunkwise`] where each token takes `every` steps (DeltaProduct's Householder steps) and
/// only its last step is read: q holds one row per token (b, heads, L/every, d_k) against k, v,
/// the decay and β over all L steps, and o has L/every rows, o_t = S_{t·every + every − 1}ᵀ q_t,
/// without forming the outputs nobody reads. The chunk is rounded up to a multiple of `every`.
pub fn chunkwise_every(inputs: &Inputs, every: i64, chunk: i64, initial: Option<&Tensor>) -> (Tensor, Tensor) {
    let kind = inputs.q.kind();
    if !matches!(kind, Kind::Float | Kind::Double) {
        // Reduced-precision inputs (autocast) accumulate in float32, as fla's kernels do, and
        // the output returns in the input dtype; the state stays float32. CPU libtorch has no
        // bfloat16 triangular solve either.
        let initial = initial.map(|s| s.to_kind(Kind::Float));
        let (o, state) = chunkwise_every(&inputs.to_kind(Kind::Float), every, chunk, initial.as_ref());
        return (o.to_kind(kind), state);
    }
    check(inputs);
    let [batch, heads, len, _] = inputs.k.size()[..] else { panic!("k must be (batch, heads, L, d_k)") };
    assert!(every >= 1 && len % every == 0, "{len} steps do not split into tokens of {every}");
    assert_eq!(inputs.q.size()[2] * every, len, "q must have one row per {every} steps");
    let d_v = inputs.v.size()[3];
    let c = chunk.clamp(1, len.max(1));
    let c = (c + every - 1) / every * every;
    let n = (len + c - 1) / c;
    let chunks = |x: &Tensor, per_chunk: i64| chunk_rows(x, batch, heads, n, per_chunk);
    let (q, k, v) = (chunks(&inputs.q, c / every), chunks(&inputs.k, c), chunks(&inputs.v, c));
    // b_i: log of the decay from the chunk's start through position i, (…, c, 1 or d_k).
    let b = log_decay(inputs).map(|g| chunks(&g, c).cumsum(3, kind));
    let scalar_decay = b.as_ref().is_some_and(|b| b.size()[4] == 1);
    // Decided once: the check reduces b and reads the result back.
    let vector_decay = b.is_some() && !scalar_decay;
    let factored = vector_decay && b.as_ref().is_some_and(factorable);
    if vector_decay && !factored {
        if let Some(shorter) = halved(c, every) {
            return chunkwise_every(inputs, every, shorter, initial);
        }
    }
    // exp(b_i − b_j) below the diagonal, formed once for the UT system and the output.
    let relative = b.as_ref().filter(|_| scalar_decay).map(relative_decay);
    let from_start = |x: &Tensor, b: Option<&Tensor>| match b {
        Some(b) => x * b.exp(),
        None => x.shallow_clone(),
    };
    // The keys decayed to their chunk's end, k_j ⊙ exp(b_last − b_j), and the whole chunk's
    // decay exp(b_last) as a (…, d_k, 1) factor on the state's rows.
    let (k_to_end, chunk_decay) = match &b {
        Some(b) => {
            let last = b.narrow(3, c - 1, 1);
            (&k * (&last - b).exp(), Some(last.exp().transpose(-1, -2)))
        }
        None => (k.shallow_clone(), None),
    };
    // The read rows' queries decayed from their chunk's start: their read of the state entering
    // the chunk is q_start S.
    let b_rows = b.as_ref().map(|b| last_of_each(b, every));
    let q_start = from_start(&q, b_rows.as_ref());
    let mut state = initial.map_or_else(|| zero_state(inputs), |s| s.shallow_clone());
    let decays = chunk_decay.as_ref().map(|d| d.unbind(2));
    let carry = |state: &Tensor, i: usize, update: Tensor| match &decays {
        Some(d) => state * &d[i] + update,
        None => state + update,
    };
    // The values the chunk's scores weigh, and the read rows' read of the state entering
    // their chunk (b, heads, chunks, rows, d_v).
    let (values, read_of_state) = match &inputs.beta {
        None => {
            let updates = k_to_end.transpose(-1, -2).matmul(&v).unbind(2);
            let mut states = Vec::with_capacity(n as usize); // the state entering each chunk
            for (i, update) in updates.into_iter().enumerate() {
                let next = carry(&state, i, update);
                states.push(std::mem::replace(&mut state, next));
            }
            (v, q_start.matmul(&Tensor::stack(&states, 2)))
        }
        Some(beta) => {
            // UT transform, every chunk in one solve: T = (I + tril(diag(β)(K Kᵀ ⊙ Γ), −1))⁻¹,
            // u = T diag(β) V and w = T diag(β) diag(γ) K; a chunk's values are then u − w S.
            // The solve reads only below the diagonal (unit diagonal implied), so what lies on
            // and above it is not masked: the solve neither reads it nor sends a gradient there.
            let beta = chunks(&beta.unsqueeze(-1), c); // (…, c, 1)
            let key_scores = k.matmul(&k.transpose(-1, -2));
            let system = match &relative {
                Some(r) => key_scores * r * &beta,
                None => key_scores * &beta,
            };
            // T itself (a solve against the identity: the solve runs one small system at a time,
            // c columns instead of d_v + d_k, 19 % faster), with β on its columns (c² per chunk
            // instead of c·(d_v + d_k)), then one product per right-hand side: no concatenated
            // copy whose slices' gradients are each a zero-filled tensor of the whole
            // (DeltaProduct's engine about 25 % faster forward + backward at L = 4,096).
            let identity = Tensor::eye(c, (kind, k.device())).expand_as(&system);
            let t_beta = system.linalg_solve_triangular(&identity, false, true, true) * beta.transpose(-1, -2);
            let u = t_beta.matmul(&v).unbind(2);
            let w = t_beta.matmul(&from_start(&k, b.as_ref()));
            // The chunk's correction w S and the read rows' q_start S in one product per chunk,
            // instead of stacking every chunk's entering state (d_k × d_v each, 64 MiB for
            // DeltaProduct at L = 4,096) for one product after the loop.
            let rows = c / every;
            let reads = Tensor::cat(&[&w, &q_start], 3).unbind(2);
            let k_to_end_t = k_to_end.transpose(-1, -2).unbind(2);
            let (mut values, mut read_of_state) = (Vec::with_capacity(n as usize), Vec::with_capacity(n as usize));
            for (i, (u, reads)) in u.iter().zip(&reads).enumerate() {
                let read = reads.matmul(&state);
                let value = u - read.narrow(2, 0, c);
                state = carry(&state, i, k_to_end_t[i].matmul(&value));
                values.push(value);
                read_of_state.push(read.narrow(2, c, rows));
            }
            (Tensor::stack(&values, 2), Tensor::stack(&read_of_state, 2))
        }
    };
    // The scores of the read rows against every key of their chunk, zero after the row's
    // position.
    let scores = match (&b, &relative) {
        (None, _) => {
            q.matmul(&k.transpose(-1, -2)).masked_fill(&last_of_each(&above_diagonal(c, q.device()), every), 0.0)
        }
        (Some(_), Some(r)) => q.matmul(&k.transpose(-1, -2)) * last_of_each(r, every),
        // Factored as dplr's pair products (see there): (q ⊙ e^{b}) (k ⊙ e^{−b})ᵀ, one matmul.
        // Back in b's dtype, as the pairwise form's scores are, whatever autocast made the matmul.
        (Some(b), None) if factored => q_start
            .matmul(&(&k * (-b).exp()).transpose(-1, -2))
            .to_kind(b.kind())
            .masked_fill(&last_of_each(&above_diagonal(c, q.device()), every), 0.0),
        (Some(b), None) => vector_decayed_scores(&q, &k, b, every),
    };
    let o = scores.matmul(&values) + read_of_state;
    (o.reshape([batch, heads, n * c / every, d_v]).narrow(2, 0, len / every), state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn inputs(decay: &str, delta: bool, len: i64) -> Inputs {
        tch::manual_seed(3);
        let opts = (Kind::Double, Device::Cpu);
        let (b, h, dk, dv) = (2, 3, 5, 4);
        let k = Tensor::randn([b, h, len, dk], opts);
        // The delta rule is stable for unit-norm keys and β ∈ [0, 2].
        let k = if delta { &k / k.norm_scalaropt_dim(2, [-1i64].as_slice(), true) } else { k };
        let decay = match decay {
            "none" => Decay::None,
            "head" => Decay::Head(Tensor::from_slice(&[-0.01, -0.1, -1.0]).to_kind(Kind::Double)),
            "scalar" => Decay::Scalar(-Tensor::rand([b, h, len], opts) * 0.5),
            "strong" => Decay::Scalar(-Tensor::rand([b, h, len], opts) * 40.0),
            // Decays whose exponents would overflow if a weight above the diagonal were formed.
            "strong vector" => Decay::Vector(-Tensor::rand([b, h, len, dk], opts) * 40.0),
            _ => Decay::Vector(-Tensor::rand([b, h, len, dk], opts) * 0.5),
        };
        Inputs {
            q: Tensor::randn([b, h, len, dk], opts) * 0.5,
            k,
            v: Tensor::randn([b, h, len, dv], opts),
            decay,
            beta: delta.then(|| Tensor::rand([b, h, len], opts) * 2.0),
        }
    }

    pub(super) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// The largest difference of `a` (any float dtype) from the float64 `reference`, relative
    /// to the reference's largest magnitude.
    pub(super) fn relative_diff(a: &Tensor, reference: &Tensor) -> f64 {
        max_diff(&a.to_kind(Kind::Double), reference) / reference.abs().max().double_value(&[])
    }

    #[test]
    fn chunkwise_equals_the_token_loop_for_every_decay_with_and_without_the_delta_rule() {
        for (decay, delta) in [
            ("none", false),
            ("head", false),
            ("scalar", false),
            ("strong", false),
            ("vector", false),
            ("strong vector", false),
            ("none", true),
            ("head", true),
            ("scalar", true),
            ("strong", true),
        ] {
            let x = inputs(decay, delta, 200);
            let initial = Tensor::randn([2, 3, 5, 4], (Kind::Double, Device::Cpu));
            let (o_ref, s_ref) = naive(&x, Some(&initial));
            for chunk in [16, 64] {
                let (o, s) = chunkwise(&x, chunk, Some(&initial));
                assert!(
                    max_diff(&o, &o_ref) < 1e-9,
                    "{decay} delta={delta} chunk={chunk}: o off by {}",
                    max_diff(&o, &o_ref)
                );
                assert!(max_diff(&s, &s_ref) < 1e-9, "{decay} delta={delta} chunk={chunk}: state");
            }
        }
    }

    #[test]
    fn reading_every_second_step_equals_the_token_loop_at_those_steps() {
        // DeltaProduct's form: two steps per token, the output read after the second. Chunks of
        // 15 round up to 16; 200 steps are 100 tokens and leave a tail of 8.
        for (decay, delta) in [("none", true), ("scalar", true), ("head", false), ("vector", false)] {
            let x = inputs(decay, delta, 200);
            let initial = Tensor::randn([2, 3, 5, 4], (Kind::Double, Device::Cpu));
            let (o_ref, s_ref) = naive(&x, Some(&initial));
            let read = |t: &Tensor| last_of_each(t, 2);
            let x_read = Inputs {
                q: read(&x.q),
                k: x.k.shallow_clone(),
                v: x.v.shallow_clone(),
                decay: match &x.decay {
                    Decay::None => Decay::None,
                    Decay::Head(g) => Decay::Head(g.shallow_clone()),
                    Decay::Scalar(g) => Decay::Scalar(g.shallow_clone()),
                    Decay::Vector(g) => Decay::Vector(g.shallow_clone()),
                },
                beta: x.beta.as_ref().map(|b| b.shallow_clone()),
            };
            for chunk in [15, 64] {
                let (o, s) = chunkwise_every(&x_read, 2, chunk, Some(&initial));
                assert_eq!(o.size(), [2, 3, 100, 4]);
                assert!(max_diff(&o, &read(&o_ref)) < 1e-9, "{decay} delta={delta} chunk={chunk}: o");
                assert!(max_diff(&s, &s_ref) < 1e-9, "{decay} delta={delta} chunk={chunk}: state");
            }
        }
    }

    #[test]
    fn float32_with_factored_vector_decays_matches_the_float64_loop() {
        // Decays of up to 0.5 per step: chunks of 64 (≤ 32) take the factored scores in float32.
        let x = inputs("vector", false, 200);
        let (o_ref, s_ref) = naive(&x, None);
        for chunk in [16, 64] {
            let (o, s) = chunkwise(&x.to_kind(Kind::Float), chunk, None);
            let off = relative_diff(&o, &o_ref);
            assert!(off < 1e-5, "chunk {chunk}: o off by {off:e} (relative)");
            assert!(relative_diff(&s, &s_ref) < 1e-5, "chunk {chunk}: state");
        }
    }

    #[test]
    fn float32_with_decays_beyond_the_limit_halves_the_chunk_and_matches_the_float64_loop() {
        // Decays of up to 40 per step: no chunk of 2 or more is factorable in float32, so chunks
        // of 16 and 64 halve down to 4 and take the pairwise form there.
        let x = inputs("strong vector", false, 200);
        let (o_ref, s_ref) = naive(&x, None);
        for chunk in [16, 64] {
            let (o, s) = chunkwise(&x.to_kind(Kind::Float), chunk, None);
            assert!(max_diff(&o.to_kind(Kind::Double), &o_ref) < 1e-4, "chunk {chunk}: o");
            assert!(max_diff(&s.to_kind(Kind::Double), &s_ref) < 1e-4, "chunk {chunk}: state");
        }
        assert_eq!(
            (halved(64, 1), halved(8, 1), halved(7, 1), halved(16, 2), halved(12, 8)),
            (Some(32), Some(4), None, Some(8), None)
        );
    }

    #[test]
    fn a_long_sequence_in_two_halves_carries_its_state() {
        let x = inputs("scalar", true, 100);
        let (o_all, s_all) = chunkwise(&x, 32, None);
        let half = |t: &Tensor, i: i64| t.narrow(2, i * 50, 50);
        let part = |i| Inputs {
            q: half(&x.q, i),
            k: half(&x.k, i),
            v: half(&x.v, i),
            decay: match &x.decay {
                Decay::Scalar(g) => Decay::Scalar(half(g, i)),
                _ => unreachable!(),
            },
            beta: x.beta.as_ref().map(|b| half(b, i)),
        };
        let (o1, s1) = chunkwise(&part(0), 32, None);
        let (o2, s2) = chunkwise(&part(1), 32, Some(&s1));
        assert!(max_diff(&Tensor::cat(&[o1, o2], 2), &o_all) < 1e-9);
        assert!(max_diff(&s2, &s_all) < 1e-9);
    }
}
