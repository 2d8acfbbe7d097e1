//! Every kernel at every width (`Scalar`, `Scalar128b`, `Scalar256b`,
//! `Scalar512b` and the dispatched [`pulp::Arch`]), in f32 and f64, against
//! its f64 oracle in `reference`, over lengths that exercise every split
//! into whole registers and a tail.
//!
//! Each check is a function generic over the element type; `both!` makes
//! it a module with one `#[test]` per type (`rows::sumsq::f32`, …).

use crate::real::Real;
use core::fmt::Debug;
use pulp::{Scalar, Scalar128b, Scalar256b, Scalar512b, WithSimd};

mod exp;
mod half;
mod rows;
mod small_gemm;
mod softmax;
mod subcentre;

/// A SIMD width the kernels run at.
#[derive(Clone, Copy, Debug)]
pub(super) enum Width {
    Scalar,
    W128,
    W256,
    W512,
    /// What [`pulp::Arch::new`] detects on this machine.
    Arch,
}

/// Every width, the emulated ones first.
pub(super) const WIDTHS: [Width; 5] = [
    Width::Scalar,
    Width::W128,
    Width::W256,
    Width::W512,
    Width::Arch,
];

/// Runs a kernel at width `w`.
pub(super) fn run<K: WithSimd>(w: Width, k: K) -> K::Output {
    match w {
        Width::Scalar => k.with_simd(Scalar),
        Width::W128 => k.with_simd(Scalar128b),
        Width::W256 => k.with_simd(Scalar256b),
        Width::W512 => k.with_simd(Scalar512b),
        Width::Arch => pulp::Arch::new().dispatch(k),
    }
}

/// Row lengths: every split of 0 ..= 67 into registers and a tail at every
/// width, and a few long rows.
pub(super) fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=67).collect();
    v.extend([511, 512, 513, 1000]);
    v
}

/// `n` deterministic values, uniform in `[-scale, scale)`.
pub(super) fn data(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) * scale
        })
        .collect()
}

/// `|a − b| ≤ tol · max(scale, |b|)`: a relative error, or an absolute one
/// against a magnitude `scale` where the result may cancel.
pub(super) fn close(a: f64, b: f64, tol: f64, scale: f64) -> bool {
    (a - b).abs() <= tol * scale.max(b.abs()).max(1e-300)
}

/// An element type under test.
pub(super) trait Elem: Real + Debug + PartialEq + PartialOrd + Copy {
    /// The relative error allowed for one kernel result that is not exact
    /// (a few roundings; also the vector `exp`'s error bound).
    const TOL: f64;
    /// Rounds to nearest.
    fn of(x: f64) -> Self;
    /// Widens (exact).
    fn f(self) -> f64;
}
impl Elem for f32 {
    const TOL: f64 = 3e-7;
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f(self) -> f64 {
        self as f64
    }
}
impl Elem for f64 {
    const TOL: f64 = 5e-16;
    fn of(x: f64) -> Self {
        x
    }
    fn f(self) -> f64 {
        self
    }
}

/// Rounding of an `n`-term sum: a few ulps per √n.
pub(super) fn sum_tol<T: Elem>(n: usize) -> f64 {
    T::TOL * (4.0 + 2.0 * (n as f64).sqrt())
}

/// Rounds to the element type.
pub(super) fn cast<T: Elem>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}

/// Widens to f64 (exact).
pub(super) fn back<T: Elem>(v: &[T]) -> Vec<f64> {
    v.iter().map(|&x| x.f()).collect()
}

/// Each named check, generic over [`Elem`], as a module of two tests:
/// `f32` and `f64`.
macro_rules! both {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[test]
                fn f32() {
                    super::$check::<f32>();
                }
                #[test]
                fn f64() {
                    super::$check::<f64>();
                }
            }
        )*
    };
}
pub(super) use both;
