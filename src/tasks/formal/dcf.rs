//! The deterministic context-free tasks of Delétang et al. (2023), sampled as the paper's code
//! samples them (`tasks/dcf/`).
use super::regular::uniform;
use super::Example;
use crate::rng::SplitMix64;

/// Stack tokens 0 and 1, then actions: POP, PUSH 0, PUSH 1.
pub const POP: i64 = 2;
pub const PUSH_ZERO: i64 = 3;
pub const PUSH_ONE: i64 = 4;
/// The output's end-of-stack token.
pub const END: i64 = 2;

/// A stack (bottom to top) and actions on it; the output is the final stack top to bottom, the
/// end token, then 0s up to `length + 1` (scored up to the end token; POP on an empty stack is
/// ignored).
pub fn stack_manipulation(rng: &mut SplitMix64, length: usize) -> Example {
    if length == 1 {
        let value = rng.range(0, 2);
        return Example::terminated(vec![value], vec![value], 2);
    }
    let stack_length = rng.range(1, length as i64) as usize;
    let mut input = uniform(rng, stack_length, 2);
    let mut stack = input.clone();
    for _ in stack_length..length {
        let action = rng.range(POP, PUSH_ONE + 1);
        input.push(action);
        if action == POP {
            stack.pop();
        } else {
            stack.push(action - PUSH_ZERO);
        }
    }
    stack.reverse();
    Example::terminated(input, stack, length + 1)
}

/// A binary string; the output is the string reversed.
pub fn reverse_string(rng: &mut SplitMix64, length: usize, vocab: i64) -> Example {
    let input = uniform(rng, length, vocab);
    let output = input.iter().rev().copied().collect();
    Example::sequence(input, output)
}

/// A symbol of a bracketed modular expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbol {
    Digit(i64),
    Plus,
    Minus,
    Times,
    Open,
    Close,
    Unknown,
    Equals,
}

/// A random bracketed expression of exactly `length` symbols over digits 0..m and its value
/// mod m, grown as the paper's `generate_one_expression_and_result` grows it: short lengths are
/// `d`, `-d`, `(d)`, `(-d)`; longer ones `(left op right)` with a random split of the length.
pub fn bracketed_expression(
    rng: &mut SplitMix64,
    length: usize,
    modulus: i64,
    mult: bool,
    out: &mut Vec<Symbol>,
) -> i64 {
    let digit = |rng: &mut SplitMix64| rng.range(0, modulus);
    match length {
        1 => {
            let d = digit(rng);
            out.push(Symbol::Digit(d));
            d
        }
        2 => {
            let d = digit(rng);
            out.extend([Symbol::Minus, Symbol::Digit(d)]);
            (-d).rem_euclid(modulus)
        }
        3 => {
            let d = digit(rng);
            out.extend([Symbol::Open, Symbol::Digit(d), Symbol::Close]);
            d
        }
        4 => {
            let d = digit(rng);
            out.extend([Symbol::Open, Symbol::Minus, Symbol::Digit(d), Symbol::Close]);
            (-d).rem_euclid(modulus)
        }
        _ => {
            let left_length = rng.range(1, length as i64 - 3) as usize;
            let right_length = length - left_length - 3;
            out.push(Symbol::Open);
            let left = bracketed_expression(rng, left_length, modulus, mult, out);
            let at = out.len();
            out.push(Symbol::Plus);
            let right = bracketed_expression(rng, right_length, modulus, mult, out);
            out.push(Symbol::Close);
            let (op, value) = match rng.below(if mult { 3 } else { 2 }) {
                0 => (Symbol::Plus, left + right),
                1 => (Symbol::Minus, left - right),
                _ => (Symbol::Times, left * right),
            };
            out[at] = op;
            value.rem_euclid(modulus)
        }
    }
}

/// Token ids of [`Symbol`]s as `modular_arithmetic_brackets` numbers them.
fn bracket_token(symbol: Symbol, m: i64) -> i64 {
    match symbol {
        Symbol::Digit(d) => d,
        Symbol::Plus => m,
        Symbol::Minus => m + 1,
        Symbol::Times => m + 2,
        Symbol::Open => m + 3,
        Symbol::Close => m + 4,
        Symbol::Unknown => m + 5,
        Symbol::Equals => m + 6,
    }
}

/// Token ids of [`Symbol`]s as `solve_equation` numbers them (no `*`).
fn equation_token(symbol: Symbol, m: i64) -> i64 {
    match symbol {
        Symbol::Digit(d) => d,
        Symbol::Plus => m,
        Symbol::Minus => m + 1,
        Symbol::Open => m + 2,
        Symbol::Close => m + 3,
        Symbol::Unknown => m + 4,
        Symbol::Equals | Symbol::Times => m + 5,
    }
}

/// A bracketed expression over `+ - *` (the paper's `mult=True`); class: its value mod m.
pub fn modular_arithmetic_brackets(rng: &mut SplitMix64, length: usize, modulus: i64) -> Example {
    let mut symbols = Vec::with_capacity(length);
    let value = bracketed_expression(rng, length, modulus, true, &mut symbols);
    Example::single(symbols.into_iter().map(|s| bracket_token(s, modulus)).collect(), value)
}

/// `expression = value` with one digit of a `+ -` expression replaced by `x`; class: that digit.
/// Lengths below 3 are all zeros with class 0, as in the paper's code.
pub fn solve_equation(rng: &mut SplitMix64, length: usize, modulus: i64) -> Example {
    if length < 3 {
        return Example::single(vec![0; length], 0);
    }
    let mut symbols = Vec::with_capacity(length);
    let value = bracketed_expression(rng, length - 2, modulus, false, &mut symbols);
    let mut at = rng.below(symbols.len() as u64) as usize;
    while !matches!(symbols[at], Symbol::Digit(_)) {
        at = (at + 1) % (length - 2);
    }
    let Symbol::Digit(solution) = symbols[at] else { unreachable!("the loop stops at a digit") };
    symbols[at] = Symbol::Unknown;
    symbols.extend([Symbol::Equals, Symbol::Digit(value)]);
    Example::single(symbols.into_iter().map(|s| equation_token(s, modulus)).collect(), solution)
}
