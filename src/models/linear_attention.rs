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
//! overflows however strong the decay. q is used as given (callers scale it).
use tch::{Kind, Tensor};

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
    let (b, h, l) = (inputs.q.size()[0], inputs.q.size()[1], inputs.q.size()[2]);
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

/// exp(b_i − b_j) for i ≥ j, 0 above the diagonal, from cumulative log decays b (…, n, 1):
/// (…, n, n). Masked before the exponential, so no exponent is positive.
fn relative_decay(b: &Tensor) -> Tensor {
    let n = b.size()[b.dim() - 2];
    let gap = b - b.transpose(-1, -2); // b_i − b_j
    gap.masked_fill(&above_diagonal(n, b.device()), f64::NEG_INFINITY).exp()
}

/// Scores q_i · k_j weighted by the decay from j to i, for i ≥ j, and 0 above the diagonal:
/// (…, n, n). With a decay the zeros come from the decay weights, masked before their
/// exponential; without one, a mask is applied.
fn causal_scores(q: &Tensor, k: &Tensor, b: Option<&Tensor>) -> Tensor {
    match b {
        None => {
            let n = q.size()[q.dim() - 2];
            q.matmul(&k.transpose(-1, -2)).masked_fill(&above_diagonal(n, q.device()), 0.0)
        }
        Some(b) => decayed_scores(q, k, b),
    }
}

/// q_i · k_j ⊙ exp(b_i − b_j) for i ≥ j, 0 above the diagonal.
fn decayed_scores(q: &Tensor, k: &Tensor, b: &Tensor) -> Tensor {
    if b.size()[b.dim() - 1] == 1 {
        return q.matmul(&k.transpose(-1, -2)) * relative_decay(b);
    }
    // A vector decay weighs each key dimension apart: Σ_d q_id k_jd exp(b_id − b_jd), formed
    // exactly as (n, n, d_k) with the exponent masked first.
    let n = q.size()[q.dim() - 2];
    let gap = b.unsqueeze(-2) - b.unsqueeze(-3); // (…, n, n, d_k)
    let above = above_diagonal(n, q.device()).unsqueeze(-1); // (n, n, 1), broadcast over d_k
    let weights = gap.masked_fill(&above, f64::NEG_INFINITY).exp();
    (q.unsqueeze(-2) * k.unsqueeze(-3) * weights).sum_dim_intlist([-1i64].as_slice(), false, None)
}

/// The strictly lower part of diag(β)(K Kᵀ ⊙ Γ), the UT transform's system, for a solve that
/// reads only below the diagonal (unit diagonal implied): what lies on and above it is not
/// masked, since the solve neither reads it nor sends a gradient there.
fn ut_system(k: &Tensor, b: Option<&Tensor>, beta: &Tensor) -> Tensor {
    let scores = match b {
        None => k.matmul(&k.transpose(-1, -2)),
        Some(b) => decayed_scores(k, k, b),
    };
    scores * beta
}

/// The chunkwise-parallel form, chunks of `chunk` positions: (o, final state), equal to
/// [`naive`]'s. Everything that does not need the state is computed for all chunks at once
/// (the scores, the decays, the UT transform's one batched triangular solve); only the state's
/// hand-over from chunk to chunk is a loop, a few ops per chunk. A tail shorter than a chunk is
/// padded with k = v = 0, β = 0 and no decay, which leaves the state as it was.
pub fn chunkwise(inputs: &Inputs, chunk: i64, initial: Option<&Tensor>) -> (Tensor, Tensor) {
    let kind = inputs.q.kind();
    if !matches!(kind, Kind::Float | Kind::Double) {
        // Reduced-precision inputs (autocast) accumulate in float32, as fla's kernels do, and
        // the output returns in the input dtype; the state stays float32. CPU libtorch has no
        // bfloat16 triangular solve either.
        let initial = initial.map(|s| s.to_kind(Kind::Float));
        let (o, state) = chunkwise(&inputs.to_kind(Kind::Float), chunk, initial.as_ref());
        return (o.to_kind(kind), state);
    }
    check(inputs);
    let [batch, heads, len, _] = inputs.q.size()[..] else { panic!("q must be (batch, heads, L, d_k)") };
    let d_v = inputs.v.size()[3];
    let c = chunk.clamp(1, len.max(1));
    let n = (len + c - 1) / c;
    // (b, heads, L, d) → (b, heads, chunks, c, d), the tail padded with zeros.
    let chunks = |x: &Tensor| {
        let padded = if n * c > len { x.constant_pad_nd([0, 0, 0, n * c - len]) } else { x.shallow_clone() };
        padded.reshape([batch, heads, n, c, -1])
    };
    let (q, k, v) = (chunks(&inputs.q), chunks(&inputs.k), chunks(&inputs.v));
    // b_i: log of the decay from the chunk's start through position i, (…, c, 1 or d_k).
    let b = log_decay(inputs).map(|g| chunks(&g).cumsum(3, kind));
    let from_start = |x: &Tensor| match &b {
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
    let mut state = initial.map_or_else(|| zero_state(inputs), |s| s.shallow_clone());
    let mut states = Vec::with_capacity(n as usize); // the state entering each chunk
    let decays = chunk_decay.as_ref().map(|d| d.unbind(2));
    let carry = |state: &Tensor, i: usize, update: Tensor| match &decays {
        Some(d) => state * &d[i] + update,
        None => state + update,
    };
    let values = match &inputs.beta {
        None => {
            let updates = k_to_end.transpose(-1, -2).matmul(&v).unbind(2);
            for (i, update) in updates.into_iter().enumerate() {
                let next = carry(&state, i, update);
                states.push(std::mem::replace(&mut state, next));
            }
            v
        }
        Some(beta) => {
            // UT transform, every chunk in one solve: T = (I + tril(diag(β)(K Kᵀ ⊙ Γ), −1))⁻¹,
            // u = T diag(β) V and w = T diag(β) diag(γ) K; a chunk's values are then u − w S.
            let beta = chunks(&beta.unsqueeze(-1)); // (…, c, 1)
            let system = ut_system(&k, b.as_ref(), &beta);
            let rhs = Tensor::cat(&[&v * &beta, from_start(&k) * &beta], -1);
            let solved = system.linalg_solve_triangular(&rhs, false, true, true);
            let (u, w) =
                (solved.narrow(-1, 0, d_v).unbind(2), solved.narrow(-1, d_v, solved.size()[4] - d_v).unbind(2));
            let k_to_end_t = k_to_end.transpose(-1, -2).unbind(2);
            let mut values = Vec::with_capacity(n as usize);
            for (i, (u, w)) in u.iter().zip(&w).enumerate() {
                let value = u - w.matmul(&state);
                let next = carry(&state, i, k_to_end_t[i].matmul(&value));
                states.push(std::mem::replace(&mut state, next));
                values.push(value);
            }
            Tensor::stack(&values, 2)
        }
    };
    let entering = Tensor::stack(&states, 2); // (b, heads, chunks, d_k, d_v)
    let o = causal_scores(&q, &k, b.as_ref()).matmul(&values) + from_start(&q).matmul(&entering);
    (o.reshape([batch, heads, n * c, d_v]).narrow(2, 0, len), state)
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

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
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
