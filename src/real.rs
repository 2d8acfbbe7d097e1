//! The element type of the head: `f32` or `f64`, one generic implementation.
//!
//! [`Real`] is the scalar surface a user of the crate sees: constants,
//! conversions to and from `f64`, and the scalar maths the margin needs
//! (acos, cos, sin, …). The SIMD vocabulary the kernels are written in and
//! the matrix-product hook are crate-private supertraits
//! (`crate::simd::SimdReal`, `crate::gemm::Product`), which also seal the
//! trait: no dependency's trait is part of this public surface.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point element type the head can run in: `f32` (the fast path)
/// or `f64` (the checking path).
///
/// The trait is sealed (implemented for `f32` and `f64` only); both share
/// every kernel.
///
/// ```
/// use arcface::Real;
/// assert_eq!(<f32 as Real>::from_f64(0.5), 0.5f32);
/// assert_eq!(2.0f64.sqrt_(), core::f64::consts::SQRT_2);
/// fn mean<T: Real>(x: &[T]) -> T {
///     x.iter().fold(T::ZERO, |a, &b| a + b) / T::from_f64(x.len() as f64)
/// }
/// assert_eq!(mean(&[1.0f32, 2.0, 6.0]), 3.0);
/// ```
pub trait Real:
    crate::simd::SimdReal
    + crate::gemm::Product
    + Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Largest finite value.
    const MAX: Self;
    /// Name used in messages and benchmark output (`"f32"`, `"f64"`).
    const NAME: &'static str;

    /// Rounds an `f64` to this type (round to nearest).
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Square root.
    fn sqrt_(self) -> Self;
    /// Arc cosine (NaN outside \[-1, 1\]).
    fn acos_(self) -> Self;
    /// Cosine.
    fn cos_(self) -> Self;
    /// Sine.
    fn sin_(self) -> Self;
    /// Natural exponential.
    fn exp_(self) -> Self;
    /// Natural logarithm.
    fn ln_(self) -> Self;
    /// Absolute value.
    fn abs_(self) -> Self;
    /// `true` unless NaN or ±∞.
    fn is_finite_(self) -> bool;
}

macro_rules! scalar_common {
    ($t:ty) => {
        #[inline(always)]
        fn to_f64(self) -> f64 {
            self as f64
        }
        #[inline(always)]
        fn sqrt_(self) -> Self {
            self.sqrt()
        }
        #[inline(always)]
        fn acos_(self) -> Self {
            self.acos()
        }
        #[inline(always)]
        fn cos_(self) -> Self {
            self.cos()
        }
        #[inline(always)]
        fn sin_(self) -> Self {
            self.sin()
        }
        #[inline(always)]
        fn exp_(self) -> Self {
            self.exp()
        }
        #[inline(always)]
        fn ln_(self) -> Self {
            self.ln()
        }
        #[inline(always)]
        fn abs_(self) -> Self {
            self.abs()
        }
        #[inline(always)]
        fn is_finite_(self) -> bool {
            self.is_finite()
        }
    };
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const MAX: Self = f32::MAX;
    const NAME: &'static str = "f32";

    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    scalar_common!(f32);
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const MAX: Self = f64::MAX;
    const NAME: &'static str = "f64";

    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    scalar_common!(f64);
}
