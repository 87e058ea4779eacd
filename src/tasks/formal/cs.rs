//! The context-sensitive tasks of Delétang et al. (2023), sampled as the paper's code samples
//! them (`tasks/cs/`). Binary numbers are little-endian except in `compute_sqrt`.
use super::regular::uniform;
use super::Example;
use crate::rng::SplitMix64;
use num_bigint::BigUint;

/// The string twice.
pub fn duplicate_string(rng: &mut SplitMix64, length: usize, vocab: i64) -> Example {
    let input = uniform(rng, length, vocab);
    let output = [input.as_slice(), input.as_slice()].concat();
    Example::sequence(input, output)
}

/// Placeholder of the missing symbol and the padding of odd lengths.
pub const MISSING: i64 = 2;
pub const ODD_PAD: i64 = 3;

/// A binary string of `length / 2` written twice with one symbol replaced by [`MISSING`] (odd
/// lengths end with [`ODD_PAD`]); class: the missing symbol. Length 1 is `1` → 1, as in the
/// paper's code.
pub fn missing_duplicate_string(rng: &mut SplitMix64, length: usize) -> Example {
    if length == 1 {
        return Example::single(vec![1], 1);
    }
    let half = uniform(rng, length / 2, 2);
    let mut input = [half.as_slice(), half.as_slice()].concat();
    let at = rng.below(input.len() as u64) as usize;
    let missing = std::mem::replace(&mut input[at], MISSING);
    input.extend(std::iter::repeat_n(ODD_PAD, length % 2));
    Example::single(input, missing)
}

/// The symbols at odd positions (1-based: s1 s3 …) first, then those at even positions.
pub fn odds_first(rng: &mut SplitMix64, length: usize, vocab: i64) -> Example {
    let input = uniform(rng, length, vocab);
    let output = input.iter().skip(1).step_by(2).chain(input.iter().step_by(2)).copied().collect();
    Example::sequence(input, output)
}

/// The string sorted.
pub fn bucket_sort(rng: &mut SplitMix64, length: usize, vocab: i64) -> Example {
    let input = uniform(rng, length, vocab);
    let mut output = input.clone();
    output.sort_unstable();
    Example::sequence(input, output)
}

/// The separator between the two numbers of `binary_addition` and `binary_multiplication`.
pub const OPERATOR: i64 = 2;

fn to_biguint(bits_le: &[i64]) -> BigUint {
    let bytes: Vec<u8> = bits_le.iter().map(|&b| b as u8).collect();
    BigUint::from_radix_le(&bytes, 2).expect("bits are 0 or 1")
}

/// Binary digits, least significant first, without trailing (leading) zeros; 0 is `[0]`.
fn bits_le(n: &BigUint) -> Vec<i64> {
    n.to_radix_le(2).into_iter().map(i64::from).collect()
}

/// A non-zero number of exactly `length` binary digits, leading zeros allowed (uniform over
/// 1..2^length, as `random.randint(1, 2**length - 1)`).
fn nonzero_bits(rng: &mut SplitMix64, length: usize) -> Vec<i64> {
    loop {
        let bits = uniform(rng, length, 2);
        if bits.contains(&1) {
            return bits;
        }
    }
}

/// `n + m` in little-endian binary, the two lengths splitting `length − 1` at random.
fn two_numbers(rng: &mut SplitMix64, length: usize) -> (Vec<i64>, BigUint, BigUint) {
    let n_length = rng.range(1, length as i64 - 1) as usize;
    let n = nonzero_bits(rng, n_length);
    let m = nonzero_bits(rng, length - 1 - n_length);
    let (n_value, m_value) = (to_biguint(&n), to_biguint(&m));
    ([n, vec![OPERATOR], m].concat(), n_value, m_value)
}

/// `n + m`; the output is the sum (no trailing zeros), the end token, then 0s up to
/// `length + 1`, scored up to the end token. Lengths up to 2 hold one number and answer it.
pub fn binary_addition(rng: &mut SplitMix64, length: usize) -> Example {
    if length <= 2 {
        // `np.random.randint(0, 2**length - 1)`: below 2^length − 1.
        let value = rng.below((1 << length) - 1);
        let input = (0..length).map(|i| ((value >> i) & 1) as i64).collect();
        return Example::terminated(input, bits_le(&BigUint::from(value)), length + 1);
    }
    let (input, n, m) = two_numbers(rng, length);
    Example::terminated(input, bits_le(&(n + m)), length + 1)
}

/// `n × m`; the output is the product (no trailing zeros), the end token, then 0s up to
/// `length`, scored up to the end token. Lengths up to 2 hold one number and answer `[]`
/// (length 1) or `[0]` (length 2), as the paper's code does.
pub fn binary_multiplication(rng: &mut SplitMix64, length: usize) -> Example {
    if length <= 2 {
        let value = rng.below((1 << length) - 1);
        let input = (0..length).map(|i| ((value >> i) & 1) as i64).collect();
        return Example::terminated(input, vec![0; length - 1], length);
    }
    let (input, n, m) = two_numbers(rng, length);
    Example::terminated(input, bits_le(&(n * m)), length)
}

/// A non-zero number of `length` binary digits, most significant first; the output is the floor
/// of its square root in `ceil(length / 2)` digits, most significant first.
pub fn compute_sqrt(rng: &mut SplitMix64, length: usize) -> Example {
    let mut input = nonzero_bits(rng, length);
    input.reverse();
    let root = to_biguint(&input.iter().rev().copied().collect::<Vec<_>>()).sqrt();
    let mut output = bits_le(&root);
    output.resize(length.div_ceil(2), 0);
    output.reverse();
    Example::sequence(input, output)
}
