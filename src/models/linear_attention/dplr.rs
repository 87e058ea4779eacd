//! The generalised delta rule on the engine (RWKV-7's; fla's "diagonal plus low rank", DPLR,
//! `fla/ops/generalized_delta_rule/dplr/naive.py`):
//!
//! ```text
//! S_t = (diag(w_t) + β_t α_tᵀ) S_{t−1} + k_t v_tᵀ,    o_t = S_tᵀ q_t
//! ```
//!
//! with a per-dimension decay w_t (given as log w, ≤ 0, through [`Inputs::decay`]) and two
//! vectors over d_k per step: α reads the state (α_tᵀ S_{t−1}, before the decay) and β writes
//! what it read back. The delta rule is the case α = −β_t k_t, β = k_t (with β_t folded in).
//!
//! Chunkwise, within a chunk with cumulative log decays b_t (from its start) and the state S_0
//! entering it, the reads x_t = α_tᵀ S_{t−1} satisfy a unit lower-triangular system:
//!
//! ```text
//! x_i = Σ_{j<i} [α_i · e^{b_{i−1}−b_j} · β_j] x_j + Σ_{j<i} [α_i · e^{b_{i−1}−b_j} · k_j] v_j
//!       + (α_i ⊙ e^{b_{i−1}})ᵀ S_0
//! ```
//!
//! so X = u + w S_0 with T = (I − A_αβ)⁻¹, u = T A_αk V and w = T (α ⊙ e^{b_prev}) — the UT
//! transform of the delta rule with its own read vector. Then
//! o = Q_β X + Q_k V + (q ⊙ e^{b}) S_0 and the state leaving the chunk is
//! e^{b_last} ⊙ S_0 + (β ⊙ e^{b_last − b})ᵀ X + (k ⊙ e^{b_last − b})ᵀ V.
//!
//! The pair products (A_αβ, A_αk, Q_β, Q_k) are Σ_d r_id c_jd e^{b_id − b_jd}. When no chunk
//! decays by more than [`super::factor_limit`] (RWKV-7's decay is at most e^{−0.61} per step, so
//! chunks of up to 64 always qualify) they are matmuls of r ⊙ e^{b} and c ⊙ e^{−b}, as fla's
//! kernels form them: each factor is finite and normal, and each term is the same product to
//! rounding. Otherwise the call runs again with half the chunk ([`super::halved`]), and below
//! chunks of 8 the pairs are formed one by one as (c, c, d_k) weights whose exponents are decays
//! between two positions (masked before the exponential), so ≤ 0 — exact for any decay, but c
//! times the memory traffic.
use super::{chunk_rows, factorable, halved, log_decay, zero_state, Inputs};
use tch::{Kind, Tensor};

/// The low-rank part of each step's transition: α (read) and β (write back), each
/// (b, heads, L, d_k).
pub struct LowRank {
    pub alpha: Tensor,
    pub beta: Tensor,
}

/// One step: q, k, α, β (b, heads, d_k), v (b, heads, d_v), log w (b, heads, d_k) →
/// (o (b, heads, d_v), the new state).
pub fn step(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    log_w: &Tensor,
    low_rank: (&Tensor, &Tensor),
    state: &Tensor,
) -> (Tensor, Tensor) {
    let (alpha, beta) = low_rank;
    let read = (alpha.unsqueeze(-1) * state).sum_dim_intlist([-2i64].as_slice(), false, None); // αᵀ S
                                                                                               // A new tensor, not in place: the old state may be the caller's (or saved for autograd).
    let s =
        state * log_w.exp().unsqueeze(-1) + beta.unsqueeze(-1) * read.unsqueeze(-2) + k.unsqueeze(-1) * v.unsqueeze(-2);
    let o = (q.unsqueeze(-1) * &s).sum_dim_intlist([-2i64].as_slice(), false, None);
    (o, s)
}

/// The decay as log w over d_k, (b, heads, L, d_k), whatever kind it was given as.
fn vector_log_decay(inputs: &Inputs) -> Tensor {
    match log_decay(inputs) {
        Some(g) => g.expand_as(&inputs.k),
        None => inputs.k.zeros_like(),
    }
}

/// The token loop: (o (b, heads, L, d_v), final state), the reference.
pub fn naive(inputs: &Inputs, low_rank: &LowRank, initial: Option<&Tensor>) -> (Tensor, Tensor) {
    let log_w = vector_log_decay(inputs);
    let mut state = initial.map_or_else(|| zero_state(inputs), |s| s.shallow_clone());
    let len = inputs.q.size()[2];
    let mut outputs = Vec::with_capacity(len as usize);
    for t in 0..len {
        let at = |x: &Tensor| x.select(2, t);
        let (o, s) = step(
            &at(&inputs.q),
            &at(&inputs.k),
            &at(&inputs.v),
            &at(&log_w),
            (&at(&low_rank.alpha), &at(&low_rank.beta)),
            &state,
        );
        outputs.push(o);
        state = s;
    }
    (Tensor::stack(&outputs, 2), state)
}

/// exp(b_rows_id − b_cols_jd) for every pair (i, j) of a chunk, (…, c, c, d_k): zero where
/// j > i, and also where j = i when `strict`. The exponent is masked before it is taken.
fn pair_decays(b_rows: &Tensor, b_cols: &Tensor, strict: bool) -> Tensor {
    let c = b_rows.size()[b_rows.dim() - 2];
    let gap = b_rows.unsqueeze(-2) - b_cols.unsqueeze(-3);
    let masked = Tensor::ones([c, c], (Kind::Bool, b_rows.device())).triu(if strict { 0 } else { 1 }).unsqueeze(-1);
    gap.masked_fill(&masked, f64::NEG_INFINITY).exp()
}

/// Σ_d r_id c_jd decays_ijd for each of `cols`, (…, c, c) each. The chunk's four pair products
/// share two decay tensors (the system and u's, the output's two): the decays and r ⊙ decays
/// are formed once for both (RWKV-7 at L 4,096 trained 13–16 % faster than with four).
fn decayed_pairs<const N: usize>(rows: &Tensor, decays: &Tensor, cols: [&Tensor; N]) -> [Tensor; N] {
    let weighted_rows = rows.unsqueeze(-2) * decays;
    cols.map(|c| (&weighted_rows * c.unsqueeze(-3)).sum_dim_intlist([-1i64].as_slice(), false, None))
}

/// The four pair products at once as one matmul per chunk: rows [α ⊙ e^{b_prev}; q ⊙ e^{b}]
/// against columns [β ⊙ e^{−b}; k ⊙ e^{−b}], then the pairs each product leaves out zeroed
/// (j ≥ i for α's, which read the state before step i; j > i for q's). Returns
/// [α·β, α·k, q·β, q·k], (…, c, c) each.
fn factored_pairs(rows: [&Tensor; 2], b: &Tensor, cols: [&Tensor; 2]) -> [Tensor; 4] {
    let c = b.size()[b.dim() - 2];
    let undecay = (-b).exp();
    let rows = Tensor::cat(&rows, -2);
    let cols = Tensor::cat(&[cols[0] * &undecay, cols[1] * &undecay], -2);
    let ones = Tensor::ones([c, c], (Kind::Bool, b.device()));
    let (from_diagonal, above_diagonal) = (ones.triu(0), ones.triu(1));
    let reads_state = Tensor::cat(&[&from_diagonal, &from_diagonal], 1);
    let outputs = Tensor::cat(&[&above_diagonal, &above_diagonal], 1);
    let left_out = Tensor::cat(&[reads_state, outputs], 0);
    // Back in b's dtype: under autocast the matmul runs in bfloat16, and the triangular solve
    // that A_αβ feeds has no bfloat16 kernel on the CPU (the pairwise form stayed float32).
    let all = rows.matmul(&cols.transpose(-1, -2)).to_kind(b.kind()).masked_fill(&left_out, 0.0);
    let block = |r: i64, col: i64| all.narrow(-2, r * c, c).narrow(-1, col * c, c);
    [block(0, 0), block(0, 1), block(1, 0), block(1, 1)]
}

/// The chunkwise form, chunks of `chunk` steps: (o, final state), equal to [`naive`]'s. A tail
/// shorter than a chunk is padded with zeros (k = v = α = β = 0, no decay: the identity).
pub fn chunkwise(inputs: &Inputs, low_rank: &LowRank, chunk: i64, initial: Option<&Tensor>) -> (Tensor, Tensor) {
    let kind = inputs.q.kind();
    if !matches!(kind, Kind::Float | Kind::Double) {
        // As the engine's other forms: float32 inside, the output back in the input's dtype.
        let as_float = LowRank { alpha: low_rank.alpha.to_kind(Kind::Float), beta: low_rank.beta.to_kind(Kind::Float) };
        let initial = initial.map(|s| s.to_kind(Kind::Float));
        let (o, state) = chunkwise(&inputs.to_kind(Kind::Float), &as_float, chunk, initial.as_ref());
        return (o.to_kind(kind), state);
    }
    let [batch, heads, len, _] = inputs.k.size()[..] else { panic!("k must be (batch, heads, L, d_k)") };
    let d_v = inputs.v.size()[3];
    let c = chunk.clamp(1, len.max(1));
    let n = (len + c - 1) / c;
    let chunks = |x: &Tensor| chunk_rows(x, batch, heads, n, c);
    let (q, k, v) = (chunks(&inputs.q), chunks(&inputs.k), chunks(&inputs.v));
    let (alpha, beta) = (chunks(&low_rank.alpha), chunks(&low_rank.beta));
    let g = chunks(&vector_log_decay(inputs));
    let b = g.cumsum(3, kind); // log decay from the chunk's start through each step
    let factored = factorable(&b); // once: it reduces b and reads the result back
    if !factored {
        if let Some(shorter) = halved(c, 1) {
            return chunkwise(inputs, low_rank, shorter, initial);
        }
    }
    let b_prev = &b - &g; // … through the step before
    let last = b.narrow(3, c - 1, 1);
    let to_end = (&last - &b).exp();

    let (alpha_start, q_start) = (&alpha * b_prev.exp(), &q * b.exp());
    let [alpha_beta, alpha_k, q_beta, q_k] = if factored {
        factored_pairs([&alpha_start, &q_start], &b, [&beta, &k])
    } else {
        let [alpha_beta, alpha_k] = decayed_pairs(&alpha, &pair_decays(&b_prev, &b, true), [&beta, &k]);
        let [q_beta, q_k] = decayed_pairs(&q, &pair_decays(&b, &b, false), [&beta, &k]);
        [alpha_beta, alpha_k, q_beta, q_k]
    };

    // x's system, every chunk at once.
    let system = -alpha_beta;
    let identity = Tensor::eye(c, (kind, k.device())).expand_as(&system);
    let t = system.linalg_solve_triangular(&identity, false, true, true);
    let u = t.matmul(&alpha_k.matmul(&v)).unbind(2);
    let w = t.matmul(&alpha_start);
    // One product per chunk reads both w S (the reads' part from S_0) and the output's q S.
    let reads = Tensor::cat(&[w, q_start], 3).unbind(2);
    let kv_updates = (&k * &to_end).transpose(-1, -2).matmul(&v).unbind(2);
    let beta_to_end = (&beta * &to_end).transpose(-1, -2).unbind(2);
    let chunk_decay = last.exp().transpose(-1, -2).unbind(2); // (…, d_k, 1)

    let mut state = initial.map_or_else(|| zero_state(inputs), |s| s.shallow_clone());
    let (mut xs, mut from_state) = (Vec::with_capacity(n as usize), Vec::with_capacity(n as usize));
    for i in 0..n as usize {
        let read = reads[i].matmul(&state);
        let x = &u[i] + read.narrow(2, 0, c);
        state = &state * &chunk_decay[i] + beta_to_end[i].matmul(&x) + &kv_updates[i];
        xs.push(x);
        from_state.push(read.narrow(2, c, c));
    }
    let (x, from_state) = (Tensor::stack(&xs, 2), Tensor::stack(&from_state, 2));
    let o = q_beta.matmul(&x) + q_k.matmul(&v) + from_state;
    (o.reshape([batch, heads, n * c, d_v]).narrow(2, 0, len), state)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{max_diff, relative_diff};
    use super::super::Decay;
    use super::*;
    use tch::Device;

    /// RWKV-7's shape of the low rank: α = −κ, β = κ ⊙ a with κ unit-norm and a ∈ (0, 1).
    fn rwkv7_like(len: i64, strong: bool) -> (Inputs, LowRank) {
        tch::manual_seed(5);
        let opts = (Kind::Double, Device::Cpu);
        let (b, h, dk, dv) = (2, 3, 5, 4);
        let kappa = Tensor::randn([b, h, len, dk], opts);
        let kappa = &kappa / kappa.norm_scalaropt_dim(2, [-1i64].as_slice(), true);
        let a = Tensor::rand([b, h, len, dk], opts);
        let scale = if strong { 40.0 } else { 0.6 };
        let inputs = Inputs {
            q: Tensor::randn([b, h, len, dk], opts) * 0.5,
            k: Tensor::randn([b, h, len, dk], opts) * 0.5,
            v: Tensor::randn([b, h, len, dv], opts),
            decay: Decay::Vector(-Tensor::rand([b, h, len, dk], opts) * scale),
            beta: None,
        };
        (inputs, LowRank { alpha: -&kappa, beta: &kappa * a })
    }

    #[test]
    fn chunkwise_equals_the_token_loop_across_chunks_and_a_tail() {
        for strong in [false, true] {
            let (x, low_rank) = rwkv7_like(200, strong);
            let initial = Tensor::randn([2, 3, 5, 4], (Kind::Double, Device::Cpu));
            let (o_ref, s_ref) = naive(&x, &low_rank, Some(&initial));
            for chunk in [4, 16, 64] {
                let (o, s) = chunkwise(&x, &low_rank, chunk, Some(&initial));
                assert!(
                    max_diff(&o, &o_ref) < 1e-9,
                    "strong={strong} chunk={chunk}: o off by {}",
                    max_diff(&o, &o_ref)
                );
                assert!(max_diff(&s, &s_ref) < 1e-9, "strong={strong} chunk={chunk}: state");
            }
        }
    }

    #[test]
    fn pairs_are_factored_only_while_a_chunk_decays_within_the_limit() {
        // RWKV-7's strongest decay, e^{−e^{−1/2}} per step: a chunk of 64 decays by 38.8.
        let b = Tensor::full([1, 1, 1, 64, 4], -(-0.5f64).exp(), (Kind::Float, Device::Cpu)).cumsum(3, Kind::Float);
        assert!(factorable(&b));
        assert!(!factorable(&(&b * 1.1)));
        assert!(factorable(&(b.to_kind(Kind::Double) * 7.0)));
    }

    #[test]
    fn float32_with_factored_pairs_matches_the_float64_loop() {
        // Decays of up to 0.6 per step: chunks of 64 (≤ 38.4) are factored in float32.
        let (x, low_rank) = rwkv7_like(200, false);
        let (o_ref, s_ref) = naive(&x, &low_rank, None);
        let float = |t: &Tensor| t.to_kind(Kind::Float);
        let low_rank32 = LowRank { alpha: float(&low_rank.alpha), beta: float(&low_rank.beta) };
        for chunk in [16, 64] {
            let (o, s) = chunkwise(&x.to_kind(Kind::Float), &low_rank32, chunk, None);
            let off = relative_diff(&o, &o_ref);
            assert!(off < 1e-5, "chunk {chunk}: o off by {off:e} (relative)");
            assert!(relative_diff(&s, &s_ref) < 1e-5, "chunk {chunk}: state");
        }
    }

    #[test]
    fn the_delta_rule_is_the_case_alpha_minus_beta_k() {
        // The engine's delta rule decays first and then removes β_t k_t kᵀ of the decayed
        // state: α = −β_t e^{g_t} k_t reads the undecayed one, β = k_t writes back.
        let (mut x, _) = rwkv7_like(60, false);
        let opts = (Kind::Double, Device::Cpu);
        x.k = &x.k / x.k.norm_scalaropt_dim(2, [-1i64].as_slice(), true);
        let beta = Tensor::rand([2, 3, 60], opts);
        let g = -Tensor::rand([2, 3, 60], opts) * 0.3;
        let alpha = -(&x.k * (&beta * g.exp()).unsqueeze(-1));
        x.decay = Decay::Scalar(g);
        let low_rank = LowRank { alpha, beta: x.k.shallow_clone() };
        // The delta rule writes β v: fold β into v for the generalised form.
        let general = Inputs { v: &x.v * beta.unsqueeze(-1), ..x };
        let (o, s) = chunkwise(&general, &low_rank, 16, None);
        let delta = Inputs { v: &general.v / beta.unsqueeze(-1), beta: Some(beta), ..general };
        let (o_ref, s_ref) = super::super::naive(&delta, None);
        assert!(max_diff(&o, &o_ref) < 1e-9, "o off by {}", max_diff(&o, &o_ref));
        assert!(max_diff(&s, &s_ref) < 1e-9);
    }
}
