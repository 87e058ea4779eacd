//! Token ids and labels held in the smallest integer type that holds them: a split of bytes
//! (pixels, byte-level text, small vocabularies) takes 1 byte a token instead of int64's 8. A
//! full-size Path-X split (200,000 images of 128 × 128 pixels) is 3.3 GB so, not 26 GB.

/// The values of a split, widened to int64 only when a batch is assembled.
#[derive(Debug, Clone, PartialEq)]
pub enum Tokens {
    U8(Vec<u8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::U8(Vec::new())
    }
}

/// Narrows `values` into the smallest type whose range holds `min..=max`.
fn narrow<T: Copy + Into<i64>>(values: &[T]) -> Tokens {
    let (min, max) = values.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v.into()), hi.max(v.into())));
    let all = || values.iter().map(|&v| v.into());
    if values.is_empty() || (min >= 0 && max <= u8::MAX as i64) {
        Tokens::U8(all().map(|v| v as u8).collect())
    } else if min >= i16::MIN as i64 && max <= i16::MAX as i64 {
        Tokens::I16(all().map(|v| v as i16).collect())
    } else if min >= i32::MIN as i64 && max <= i32::MAX as i64 {
        Tokens::I32(all().map(|v| v as i32).collect())
    } else {
        Tokens::I64(all().collect())
    }
}

impl From<Vec<i64>> for Tokens {
    fn from(values: Vec<i64>) -> Self {
        match narrow(&values) {
            Tokens::I64(_) => Tokens::I64(values),
            narrowed => narrowed,
        }
    }
}

impl PartialEq<Vec<i64>> for Tokens {
    fn eq(&self, other: &Vec<i64>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter().copied())
    }
}

impl From<Vec<u8>> for Tokens {
    fn from(values: Vec<u8>) -> Self {
        Tokens::U8(values)
    }
}

impl From<&[i32]> for Tokens {
    fn from(values: &[i32]) -> Self {
        narrow(values)
    }
}

impl Tokens {
    /// Little-endian int32 values (the data cache's format), narrowed without first holding
    /// them all as int32: one pass finds the range, the next decodes into the chosen type.
    pub fn from_le_i32(bytes: &[u8]) -> Tokens {
        let values = || bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let (min, max) = values().fold((i32::MAX, i32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if bytes.len() < 4 || (min >= 0 && max <= u8::MAX as i32) {
            Tokens::U8(values().map(|v| v as u8).collect())
        } else if min >= i16::MIN as i32 && max <= i16::MAX as i32 {
            Tokens::I16(values().map(|v| v as i16).collect())
        } else {
            Tokens::I32(values().collect())
        }
    }
}

/// Calls `$body` with `$v` bound to the variant's vector, whatever its type.
macro_rules! each {
    ($tokens:expr, $v:ident => $body:expr) => {
        match $tokens {
            Tokens::U8($v) => $body,
            Tokens::I16($v) => $body,
            Tokens::I32($v) => $body,
            Tokens::I64($v) => $body,
        }
    };
}

impl Tokens {
    pub fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per value.
    pub fn width(&self) -> usize {
        each!(self, v => std::mem::size_of_val(v.first().unwrap_or(&Default::default())))
    }

    /// The value at `i`.
    #[allow(clippy::unnecessary_cast)] // the cast is a no-op only for the int64 variant
    pub fn get(&self, i: usize) -> i64 {
        each!(self, v => v[i] as i64)
    }

    /// Every value, widened.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The values in `range`, widened, appended to `out`.
    #[allow(clippy::unnecessary_cast)] // as in `get`
    pub fn extend_into(&self, range: std::ops::Range<usize>, out: &mut Vec<i64>) {
        each!(self, v => out.extend(v[range].iter().map(|&x| x as i64)))
    }

    pub fn to_vec(&self) -> Vec<i64> {
        self.iter().collect()
    }

    /// Moves the values from `at` on into their own `Tokens` of the same type.
    pub fn split_off(&mut self, at: usize) -> Tokens {
        match self {
            Tokens::U8(v) => Tokens::U8(v.split_off(at)),
            Tokens::I16(v) => Tokens::I16(v.split_off(at)),
            Tokens::I32(v) => Tokens::I32(v.split_off(at)),
            Tokens::I64(v) => Tokens::I64(v.split_off(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_range_gets_the_smallest_type_and_values_read_back_unchanged() {
        let cases: [(Vec<i64>, usize); 5] = [
            (vec![0, 7, 255], 1),
            (vec![-100, 3, 5], 2), // labels with IGNORE
            (vec![0, 40_000], 4),
            (vec![0, 1 << 40], 8),
            (vec![], 1),
        ];
        for (values, width) in cases {
            let tokens = Tokens::from(values.clone());
            assert_eq!((tokens.width(), tokens.to_vec()), (width, values.clone()), "{values:?}");
        }
        let mut t = Tokens::from(vec![1i64, 2, 3, 4]);
        let tail = t.split_off(3);
        assert_eq!((t.to_vec(), tail.to_vec()), (vec![1, 2, 3], vec![4]));
        let mut out = vec![9];
        Tokens::from(&[5i32, -2, 7][..]).extend_into(1..3, &mut out);
        assert_eq!(out, [9, -2, 7]);
        let bytes: Vec<u8> = [3i32, -100, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let decoded = Tokens::from_le_i32(&bytes);
        assert_eq!((decoded.width(), decoded.to_vec()), (2, vec![3, -100, 7]));
    }
}
