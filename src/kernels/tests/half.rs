//! The half-precision widening (every f16 and bf16 bit pattern) and the
//! serving forward over every register-block shape, against `half`'s
//! conversions and the f64 oracle.

use super::{close, data, run, WIDTHS};
use crate::kernels::half::{pack_row, HalfFloat, HalfForward};
use crate::kernels::reference;
use half::{bf16, f16};
use pulp::{Simd, WithSimd};

/// Widens `words` (two halves each) through `H::widen_pairs` at one width,
/// back into element order.
struct WidenAll<'a, H> {
    words: &'a [u32],
    _h: core::marker::PhantomData<H>,
}
impl<H: HalfFloat> WithSimd for WidenAll<'_, H> {
    type Output = Vec<f32>;
    fn with_simd<S: Simd>(self, s: S) -> Vec<f32> {
        let mut out = Vec::with_capacity(2 * self.words.len());
        let (head, tail) = S::as_simd_u32s(self.words);
        let l = core::mem::size_of::<S::u32s>() / 4;
        let mut emit = |w: S::u32s| {
            let (lo, hi) = H::widen_pairs(s, w);
            let (mut a, mut b) = ([0.0f32; 16], [0.0f32; 16]);
            s.partial_store_f32s(&mut a[..l], lo);
            s.partial_store_f32s(&mut b[..l], hi);
            let (lo, hi) = (a, b);
            for q in 0..l {
                out.push(lo[q]);
                out.push(hi[q]);
            }
        };
        head.iter().for_each(|w| emit(*w));
        if !tail.is_empty() {
            emit(s.partial_load_u32s(tail));
        }
        out.truncate(2 * self.words.len());
        out
    }
}

/// Every 16-bit pattern, paired with a shifted copy so that each pattern
/// is seen in both halves of a word.
fn all_words() -> Vec<u32> {
    (0..=u16::MAX as u32)
        .map(|b| b | (b.wrapping_mul(40503) & 0xFFFF) << 16)
        .collect()
}

fn widens_every_pattern<H: HalfFloat>(exact: impl Fn(u16) -> f32) {
    let words = all_words();
    for w in WIDTHS {
        let got = run(
            w,
            WidenAll::<H> {
                words: &words,
                _h: core::marker::PhantomData,
            },
        );
        for (j, g) in got.iter().enumerate() {
            let bits = (words[j / 2] >> (16 * (j % 2))) as u16;
            let want = exact(bits);
            let same = if want.is_nan() {
                g.is_nan() && g.is_sign_negative() == want.is_sign_negative()
            } else {
                g.to_bits() == want.to_bits()
            };
            assert!(same, "{w:?} {} bits {bits:#06x}: {g} != {want}", H::NAME);
        }
    }
}

#[test]
fn f16_widening_is_exact_for_every_pattern() {
    // zeros, subnormals, normals, ±inf and NaNs (their payload kept)
    widens_every_pattern::<f16>(|b| f16::from_bits(b).to_f32());
}

#[test]
fn bf16_widening_is_exact_for_every_pattern() {
    widens_every_pattern::<bf16>(|b| bf16::from_bits(b).to_f32());
}

const DIMS: [usize; 9] = [1, 2, 3, 7, 16, 33, 67, 512, 513];
const ROWS: [usize; 6] = [1, 2, 3, 8, 9, 17];
const SAMPLES: [usize; 6] = [1, 2, 3, 4, 5, 8];

/// `pt = scale · W X̂ᵀ` against the oracle at every width and block shape,
/// every output overwritten.
fn forward<H: HalfFloat>(exact: impl Fn(u16) -> f64) {
    for w in WIDTHS {
        for d in DIMS {
            for rows in ROWS {
                for n in SAMPLES {
                    let seed = (d * 1000 + rows * 20 + n) as u64;
                    let bits: Vec<u16> = data(rows * d, seed, 2.0)
                        .iter()
                        .map(|&v| H::bits_of(v as f32))
                        .collect();
                    let p = d.div_ceil(2);
                    let mut packed = vec![0u32; rows * p];
                    for (r, out) in packed.chunks_exact_mut(p).enumerate() {
                        pack_row(bits[r * d..(r + 1) * d].iter().copied(), out);
                    }
                    let xs: Vec<f32> = data(n * d, seed + 1, 1.0)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    let scale: Vec<f32> = data(rows, seed + 2, 3.0)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    let mut pt = vec![7.0f32; rows * n];
                    run(
                        w,
                        HalfForward::<H> {
                            w: &packed,
                            p,
                            xs: &xs,
                            d,
                            n,
                            xp: &mut vec![5.0; n * 2 * p],
                            scale: &scale,
                            pt: &mut pt,
                            _h: core::marker::PhantomData,
                        },
                    );
                    let wf: Vec<f64> = bits.iter().map(|&b| exact(b)).collect();
                    let xf: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
                    let sf: Vec<f64> = scale.iter().map(|&v| v as f64).collect();
                    let want = reference::half_forward(&wf, &xf, &sf, d, n);
                    let tol = 3e-7 * (4.0 + 2.0 * (d as f64).sqrt());
                    for (e, (&got, want)) in pt.iter().zip(&want).enumerate() {
                        let mag = 3.0 * 2.0 * d as f64;
                        assert!(
                            close(got as f64, *want, tol, mag),
                            "{w:?} {} d={d} rows={rows} n={n} entry {e}: {got} vs {want}",
                            H::NAME
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn f16_forward_matches_the_oracle() {
    forward::<f16>(|b| f16::from_bits(b).to_f64());
}

#[test]
fn bf16_forward_matches_the_oracle() {
    forward::<bf16>(|b| bf16::from_bits(b).to_f64());
}
