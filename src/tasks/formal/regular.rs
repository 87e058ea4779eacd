//! The regular tasks of Delétang et al. (2023), sampled as the paper's code samples them
//! (google-deepmind/neural_networks_chomsky_hierarchy, `tasks/regular/`). Each answers with
//! one class after the whole input.
use super::Example;
use crate::rng::SplitMix64;

/// `length` tokens uniform in 0..`vocab`.
pub(super) fn uniform(rng: &mut SplitMix64, length: usize, vocab: i64) -> Vec<i64> {
    (0..length).map(|_| rng.range(0, vocab)).collect()
}

/// Binary string; class 1 when the number of `01` and `10` pairs is odd.
pub fn even_pairs(rng: &mut SplitMix64, length: usize) -> Example {
    let s = uniform(rng, length, 2);
    let unequal = s.windows(2).filter(|w| w[0] != w[1]).count();
    Example::single(s, (unequal % 2) as i64)
}

/// Binary string; class 1 when the number of 1s is odd.
pub fn parity_check(rng: &mut SplitMix64, length: usize) -> Example {
    let s = uniform(rng, length, 2);
    let ones = s.iter().sum::<i64>();
    Example::single(s, ones % 2)
}

/// Moves 0 = left, 1 = stay, 2 = right on a cycle of 5 starting at 0; class: the final position.
pub fn cycle_navigation(rng: &mut SplitMix64, length: usize) -> Example {
    let moves = uniform(rng, length, 3);
    let position = moves.iter().map(|m| m - 1).sum::<i64>().rem_euclid(CYCLE);
    Example::single(moves, position)
}

pub const CYCLE: i64 = 5;

/// Operator token offsets above the digits, as the paper's `OP_BY_CHARACTER` (`_`, a blank,
/// is in the vocabulary but never sampled).
pub const PLUS: i64 = 0;
pub const MINUS: i64 = 1;
pub const TIMES: i64 = 2;
pub const ARITHMETIC_OPERATORS: i64 = 4;

/// `d op d op … d` over digits 0..m (odd length: an even length drops one token, as the
/// paper's sampler does) with `+ - *` at the usual precedence; class: the value mod m.
pub fn modular_arithmetic(rng: &mut SplitMix64, length: usize, modulus: i64) -> Example {
    let length = if length % 2 == 1 { length } else { length - 1 };
    let mut tokens = Vec::with_capacity(length);
    // Sum of the finished terms and the running product of the current one (with its sign).
    let (mut sum, mut term) = (0i64, 0i64);
    for i in 0..length {
        if i % 2 == 0 {
            let digit = rng.range(0, modulus);
            tokens.push(digit);
            term = match tokens.len() {
                1 => digit,
                _ => match tokens[i - 1] - modulus {
                    TIMES => term * digit % modulus,
                    MINUS => {
                        sum += term;
                        -digit
                    }
                    _ => {
                        sum += term;
                        digit
                    }
                },
            };
        } else {
            tokens.push(modulus + [PLUS, TIMES, MINUS][rng.below(3) as usize]);
        }
    }
    Example::single(tokens, (sum + term).rem_euclid(modulus))
}
