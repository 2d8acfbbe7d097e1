//! The half-precision widening (every f16 and bf16 bit pattern) and the
//! serving forward over every register-block shape, against `half`'s
//! conversions and the f64 oracle.

use super::{close, data, run, Width, WIDTHS};
#[cfg(target_arch = "x86_64")]
use crate::kernels::half::{f16c_forward, CvtF16c, CvtV4};
use crate::kernels::half::{
    interleave_samples, pack_row, panel_index, panel_words, HalfFloat, HalfForward, Soft, Widen,
};
use crate::kernels::reference;
use half::{bf16, f16};
use pulp::{Simd, WithSimd};

/// Widens `words` (two halves each) through `wd` at width `S`, back into
/// element order.
fn widen_all<S: Simd, W: Widen<S>>(s: S, wd: W, words: &[u32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(2 * words.len());
    let (head, tail) = S::as_simd_u32s(words);
    let l = core::mem::size_of::<S::u32s>() / 4;
    let mut emit = |w: S::u32s| {
        let (lo, hi) = wd.pairs(s, w);
        let (mut a, mut b) = ([0.0f32; 16], [0.0f32; 16]);
        s.partial_store_f32s(&mut a[..l], lo);
        s.partial_store_f32s(&mut b[..l], hi);
        if W::IN_ORDER {
            out.extend_from_slice(&a[..l]);
            out.extend_from_slice(&b[..l]);
        } else {
            for q in 0..l {
                out.push(a[q]);
                out.push(b[q]);
            }
        }
    };
    head.iter().for_each(|w| emit(*w));
    if !tail.is_empty() {
        emit(s.partial_load_u32s(tail));
    }
    out.truncate(2 * words.len());
    out
}

/// The integer widening of `H` at every width.
struct WidenAll<'a, H> {
    words: &'a [u32],
    _h: core::marker::PhantomData<H>,
}
impl<H: HalfFloat> WithSimd for WidenAll<'_, H> {
    type Output = Vec<f32>;
    fn with_simd<S: Simd>(self, s: S) -> Vec<f32> {
        widen_all(s, Soft::<H>(core::marker::PhantomData), self.words)
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
        check_widened(&format!("{w:?} {}", H::NAME), &words, &got, &exact);
    }
}

/// `got` (the elements of `words` widened) against `exact`, bit for bit
/// (a NaN: a NaN of the same sign).
fn check_widened(what: &str, words: &[u32], got: &[f32], exact: impl Fn(u16) -> f32) {
    assert_eq!(got.len(), 2 * words.len(), "{what}");
    for (j, g) in got.iter().enumerate() {
        let bits = (words[j / 2] >> (16 * (j % 2))) as u16;
        let want = exact(bits);
        let same = if want.is_nan() {
            g.is_nan() && g.is_sign_negative() == want.is_sign_negative()
        } else {
            g.to_bits() == want.to_bits()
        };
        assert!(same, "{what} bits {bits:#06x}: {g} != {want}");
    }
}

/// F16C's conversion of f16 at AVX2 width (forced, where this CPU has
/// AVX2 and F16C).
#[cfg(target_arch = "x86_64")]
#[test]
fn f16_f16c_widening_is_exact_for_every_pattern() {
    let (Some(v3), Some(cvt)) = (pulp::x86::V3::try_new(), CvtF16c::detect()) else {
        return;
    };
    let words = all_words();
    let got = widen_all(v3, cvt, &words);
    check_widened("V3 F16C", &words, &got, |b| f16::from_bits(b).to_f32());
}

/// The hardware conversion of f16 on AVX-512 (where this CPU has it).
#[cfg(target_arch = "x86_64")]
#[test]
fn f16_hardware_widening_is_exact_for_every_pattern() {
    let Some(v4) = pulp::x86::V4::try_new() else {
        return;
    };
    let words = all_words();
    let got = widen_all(v4, CvtV4, &words);
    check_widened("V4 vcvtph2ps", &words, &got, |b| f16::from_bits(b).to_f32());
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

/// A way to run the forward.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// The integer widening at a width.
    Soft(Width),
    /// The serving entry: f16 by the hardware conversion on AVX-512 or
    /// AVX2 + F16C.
    Dispatched,
    /// f16 by F16C at AVX2 width, forced (where the CPU has both).
    F16c,
}

impl Path {
    /// Runs `k` this way; false where this CPU or type has no such path.
    fn run<H: HalfFloat>(self, k: HalfForward<'_, H>) -> bool {
        match self {
            Path::Soft(w) => run(w, k),
            Path::Dispatched => k.dispatch(pulp::Arch::new()),
            #[cfg(target_arch = "x86_64")]
            Path::F16c => match (pulp::x86::V3::try_new(), CvtF16c::detect()) {
                (Some(v3), Some(cvt)) if H::NAME == "f16" => f16c_forward(k, v3, cvt),
                _ => return false,
            },
            #[cfg(not(target_arch = "x86_64"))]
            Path::F16c => return false,
        }
        true
    }
}

const DIMS: [usize; 9] = [1, 2, 3, 7, 16, 33, 67, 512, 513];
const ROWS: [usize; 8] = [1, 2, 3, 8, 9, 16, 17, 40];
const SAMPLES: [usize; 9] = [1, 2, 3, 4, 5, 8, 9, 13, 16];

/// `pt = scale · W X̂ᵀ` against the oracle at every width and block shape,
/// every output overwritten.
fn forward<H: HalfFloat>(exact: impl Fn(u16) -> f64) {
    let paths = WIDTHS
        .map(Path::Soft)
        .into_iter()
        .chain([Path::Dispatched, Path::F16c]);
    for w in paths {
        for d in DIMS {
            for rows in ROWS {
                for n in SAMPLES {
                    let seed = (d * 1000 + rows * 20 + n) as u64;
                    let bits: Vec<u16> = data(rows * d, seed, 2.0)
                        .iter()
                        .map(|&v| H::bits_of(v as f32))
                        .collect();
                    let p = d.div_ceil(2);
                    // padding rows of garbage: no output may depend on them
                    let mut packed = vec![0x3C00_3C00u32; panel_words(rows, p)];
                    let mut row = vec![0u32; p];
                    for r in 0..rows {
                        pack_row(bits[r * d..(r + 1) * d].iter().copied(), &mut row);
                        for (j, &w) in row.iter().enumerate() {
                            packed[panel_index(p, r, j)] = w;
                        }
                    }
                    let xs: Vec<f32> = data(n * d, seed + 1, 1.0)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    let mut xt = vec![5.0; 2 * p * n];
                    interleave_samples(&xs, d, n, &mut xt);
                    let scale: Vec<f32> = data(rows, seed + 2, 3.0)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    let mut pt = vec![7.0f32; rows * n];
                    let k = HalfForward::<H> {
                        w: &packed,
                        p,
                        xt: &xt,
                        d,
                        n,
                        scale: &scale,
                        pt: &mut pt,
                        _h: core::marker::PhantomData,
                    };
                    if !w.run(k) {
                        continue;
                    }
                    let wf: Vec<f64> = bits.iter().map(|&b| exact(b)).collect();
                    let xf: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
                    let sf: Vec<f64> = scale.iter().map(|&v| v as f64).collect();
                    let want = reference::half_forward(&wf, &xf, &sf, d, n);
                    let tol = 3e-7 * (4.0 + 2.0 * (d as f64).sqrt());
                    // the kernel's n × rows against the oracle's rows × n
                    let got_rows: Vec<f32> =
                        (0..rows * n).map(|e| pt[(e % n) * rows + e / n]).collect();
                    for (e, (&got, want)) in got_rows.iter().zip(&want).enumerate() {
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
