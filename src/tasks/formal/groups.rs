//! Word problems over finite groups ("The Illusion of State in State-Space Models", Merrill et
//! al. 2024; Grazzi et al. 2025): a sequence of group elements, and at every position the
//! product of the elements so far. S5 and A5 are not solvable, so no constant-depth circuit (and
//! no diagonal SSM with positive decays) tracks them at every length; Z60 is abelian.
use anyhow::{bail, Result};

/// A finite group as its elements (permutations of 0..n, or residues for Zn) and its
/// multiplication table: `product[a][b]` is "a, then b".
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Each element as the image of 0..n (Zn: the residue as a rotation of n points).
    pub elements: Vec<Vec<usize>>,
    product: Vec<u16>,
}

/// Symmetric groups up to S6 (720 elements) and cyclic groups up to Z1000 keep the table small.
const MAX_DEGREE: usize = 6;
const MAX_CYCLIC: usize = 1000;

impl Group {
    /// `S<n>` (all permutations), `A<n>` (even permutations) or `Z<n>` (cyclic).
    pub fn parse(name: &str) -> Result<Group> {
        let expected = format!(
            "expected S<n> or A<n> (symmetric or alternating group, n in 2..={MAX_DEGREE}) or Z<n> (cyclic, n in 2..={MAX_CYCLIC}), such as S5, A5, S4, Z60"
        );
        let (kind, n) = name.split_at(name.chars().next().map_or(0, char::len_utf8));
        let Ok(n) = n.parse::<usize>() else { bail!("`{name}` is not a group; {expected}") };
        let elements = match kind {
            "S" | "A" if (2..=MAX_DEGREE).contains(&n) => {
                let all = permutations(n);
                if kind == "S" {
                    all
                } else {
                    all.into_iter().filter(|p| is_even(p)).collect()
                }
            }
            "Z" if (2..=MAX_CYCLIC).contains(&n) => (0..n).map(|r| (0..n).map(|i| (i + r) % n).collect()).collect(),
            _ => bail!("`{name}` is not a group; {expected}"),
        };
        Ok(Group::from_elements(name.to_string(), elements))
    }

    fn from_elements(name: String, elements: Vec<Vec<usize>>) -> Group {
        let index: std::collections::HashMap<&[usize], u16> =
            elements.iter().enumerate().map(|(i, p)| (p.as_slice(), i as u16)).collect();
        let mut product = Vec::with_capacity(elements.len() * elements.len());
        for a in &elements {
            for b in &elements {
                let composed: Vec<usize> = a.iter().map(|&i| b[i]).collect();
                product.push(index[composed.as_slice()]);
            }
        }
        Group { name, elements, product }
    }

    pub fn order(&self) -> usize {
        self.elements.len()
    }

    /// The element "a, then b".
    pub fn multiply(&self, a: usize, b: usize) -> usize {
        self.product[a * self.order() + b] as usize
    }
}

/// Permutations of 0..n in lexicographic order (index 0 is the identity).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    let mut current: Vec<usize> = (0..n).collect();
    let mut all = vec![current.clone()];
    // Narayana's next-permutation.
    loop {
        let Some(i) = (0..n.saturating_sub(1)).rev().find(|&i| current[i] < current[i + 1]) else { return all };
        let j = (i + 1..n).rev().find(|&j| current[j] > current[i]).expect("a larger element follows i");
        current.swap(i, j);
        current[i + 1..].reverse();
        all.push(current.clone());
    }
}

fn is_even(p: &[usize]) -> bool {
    let inversions = (0..p.len()).flat_map(|i| (i + 1..p.len()).map(move |j| (i, j))).filter(|&(i, j)| p[i] > p[j]);
    inversions.count() % 2 == 0
}
