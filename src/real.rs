//! The element type of the head: `f32` or `f64`, one generic implementation.
//!
//! [`Real`] bundles the scalar maths the margin needs (acos, cos, sin, …) and a
//! thin SIMD vocabulary over [`pulp::Simd`] so that every kernel in
//! [`crate::kernels`] is written once and instantiated for both precisions and
//! every vector width.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};
use pulp::Simd;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type the head can run in: `f32` (the fast path)
/// or `f64` (the checking path).
///
/// The trait is sealed; the two implementations share every kernel.
///
/// ```
/// use arcface::Real;
/// assert_eq!(<f32 as Real>::from_f64(0.5), 0.5f32);
/// assert_eq!(2.0f64.sqrt_(), core::f64::consts::SQRT_2);
/// ```
pub trait Real:
    sealed::Sealed
    + faer::traits::RealField
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

    /// A SIMD register of this type for the instruction set `S`.
    type V<S: Simd>: Copy;

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

    /// Broadcasts a scalar.
    fn splat<S: Simd>(s: S, x: Self) -> Self::V<S>;
    /// Lane-wise `a + b`.
    fn vadd<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::V<S>;
    /// Lane-wise `a - b`.
    fn vsub<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::V<S>;
    /// Lane-wise `a * b`.
    fn vmul<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::V<S>;
    /// Lane-wise `a / b`.
    fn vdiv<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::V<S>;
    /// Lane-wise `a * b + c` (fused where the hardware has it).
    fn vfma<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>, c: Self::V<S>) -> Self::V<S>;
    /// Lane-wise `a * b + c` rounded once (software FMA on the emulated
    /// widths): exact residuals for the division refinement.
    fn vfma_exact<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>, c: Self::V<S>) -> Self::V<S>;
    /// Lane-wise maximum (NaN handling unspecified: inputs are validated).
    fn vmax<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::V<S>;
    /// A lane mask of this type for `S`.
    type M<S: Simd>: Copy;
    /// Lane-wise `a > b`.
    fn vgt<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::M<S>;
    /// Lane-wise `a == b`.
    fn veq<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::M<S>;
    /// Lane-wise `m ? a : b`.
    fn vselect<S: Simd>(s: S, m: Self::M<S>, a: Self::V<S>, b: Self::V<S>) -> Self::V<S>;
    /// Lane-wise `exp(x)` for `x <= 0` (see [`crate::kernels`] for the error bound).
    fn vexp<S: Simd>(s: S, x: Self::V<S>) -> Self::V<S>;
    /// Horizontal sum.
    fn vsum<S: Simd>(s: S, a: Self::V<S>) -> Self;
    /// Horizontal maximum.
    fn vhmax<S: Simd>(s: S, a: Self::V<S>) -> Self;
    /// Splits a slice into whole registers and a scalar tail.
    fn split<S: Simd>(x: &[Self]) -> (&[Self::V<S>], &[Self]);
    /// Splits a mutable slice into whole registers and a scalar tail.
    fn split_mut<S: Simd>(x: &mut [Self]) -> (&mut [Self::V<S>], &mut [Self]);
    /// Loads a partial register, zero-filled.
    fn load_tail<S: Simd>(s: S, x: &[Self]) -> Self::V<S>;
    /// Stores the first `x.len()` lanes.
    fn store_tail<S: Simd>(s: S, x: &mut [Self], v: Self::V<S>);
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
    type V<S: Simd> = S::f32s;
    type M<S: Simd> = S::m32s;

    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    scalar_common!(f32);

    #[inline(always)]
    fn splat<S: Simd>(s: S, x: Self) -> S::f32s {
        s.splat_f32s(x)
    }
    #[inline(always)]
    fn vadd<S: Simd>(s: S, a: S::f32s, b: S::f32s) -> S::f32s {
        s.add_f32s(a, b)
    }
    #[inline(always)]
    fn vsub<S: Simd>(s: S, a: S::f32s, b: S::f32s) -> S::f32s {
        s.sub_f32s(a, b)
    }
    #[inline(always)]
    fn vmul<S: Simd>(s: S, a: S::f32s, b: S::f32s) -> S::f32s {
        s.mul_f32s(a, b)
    }
    #[inline(always)]
    fn vgt<S: Simd>(s: S, a: S::f32s, b: S::f32s) -> S::m32s {
        s.greater_than_f32s(a, b)
    }
    #[inline(always)]
    fn veq<S: Simd>(s: S, a: S::f32s, b: S::f32s) -> S::m32s {
        s.equal_f32s(a, b)
    }
    #[inline(always)]
    fn vselect<S: Simd>(s: S, m: S::m32s, a: S::f32s, b: S::f32s) -> S::f32s {
        s.select_f32s(m, a, b)
    }
    #[inline(always)]
    fn vdiv<S: Simd>(s: S, a: S::f32s, b: S::f32s) -> S::f32s {
        s.div_f32s(a, b)
    }
    #[inline(always)]
    fn vfma<S: Simd>(s: S, a: S::f32s, b: S::f32s, c: S::f32s) -> S::f32s {
        s.mul_add_e_f32s(a, b, c)
    }
    #[inline(always)]
    fn vfma_exact<S: Simd>(s: S, a: S::f32s, b: S::f32s, c: S::f32s) -> S::f32s {
        s.mul_add_f32s(a, b, c)
    }
    #[inline(always)]
    fn vmax<S: Simd>(s: S, a: S::f32s, b: S::f32s) -> S::f32s {
        s.max_f32s(a, b)
    }
    /// Cody–Waite reduction `x = k·ln2 + r`, |r| ≤ ln2/2, degree-6 Taylor
    /// polynomial (truncation 1.2e-7 relative), `2^k` built in the exponent
    /// bits. Inputs below −87 are clamped (the result is then ≤ 1.7e-38,
    /// negligible against the row maximum's `exp(0) = 1`).
    #[inline(always)]
    fn vexp<S: Simd>(s: S, x: S::f32s) -> S::f32s {
        let x = s.max_f32s(x, s.splat_f32s(-87.0));
        let magic = s.splat_f32s(12582912.0); // 1.5·2^23
        let t = s.mul_add_f32s(x, s.splat_f32s(core::f32::consts::LOG2_E), magic);
        let k = s.sub_f32s(t, magic);
        let r = s.mul_add_f32s(k, s.splat_f32s(-0.693_145_75), x); // ln2 hi
        let r = s.mul_add_f32s(k, s.splat_f32s(-1.428_606_8e-6), r); // ln2 lo
        let mut p = s.splat_f32s(1.0 / 720.0);
        p = s.mul_add_f32s(p, r, s.splat_f32s(1.0 / 120.0));
        p = s.mul_add_f32s(p, r, s.splat_f32s(1.0 / 24.0));
        p = s.mul_add_f32s(p, r, s.splat_f32s(1.0 / 6.0));
        p = s.mul_add_f32s(p, r, s.splat_f32s(0.5));
        p = s.mul_add_f32s(p, r, s.splat_f32s(1.0));
        p = s.mul_add_f32s(p, r, s.splat_f32s(1.0));
        let kbits = s.sub_u32s(s.transmute_u32s_f32s(t), s.transmute_u32s_f32s(magic));
        let shifted = s.wrapping_dyn_shl_u32s(kbits, s.splat_u32s(23));
        s.transmute_f32s_u32s(s.add_u32s(s.transmute_u32s_f32s(p), shifted))
    }
    #[inline(always)]
    fn vsum<S: Simd>(s: S, a: S::f32s) -> f32 {
        s.reduce_sum_f32s(a)
    }
    #[inline(always)]
    fn vhmax<S: Simd>(s: S, a: S::f32s) -> f32 {
        s.reduce_max_f32s(a)
    }
    #[inline(always)]
    fn split<S: Simd>(x: &[f32]) -> (&[S::f32s], &[f32]) {
        S::as_simd_f32s(x)
    }
    #[inline(always)]
    fn split_mut<S: Simd>(x: &mut [f32]) -> (&mut [S::f32s], &mut [f32]) {
        S::as_mut_simd_f32s(x)
    }
    #[inline(always)]
    fn load_tail<S: Simd>(s: S, x: &[f32]) -> S::f32s {
        s.partial_load_f32s(x)
    }
    #[inline(always)]
    fn store_tail<S: Simd>(s: S, x: &mut [f32], v: S::f32s) {
        s.partial_store_f32s(x, v)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const MAX: Self = f64::MAX;
    const NAME: &'static str = "f64";
    type V<S: Simd> = S::f64s;
    type M<S: Simd> = S::m64s;

    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    scalar_common!(f64);

    #[inline(always)]
    fn splat<S: Simd>(s: S, x: Self) -> S::f64s {
        s.splat_f64s(x)
    }
    #[inline(always)]
    fn vadd<S: Simd>(s: S, a: S::f64s, b: S::f64s) -> S::f64s {
        s.add_f64s(a, b)
    }
    #[inline(always)]
    fn vsub<S: Simd>(s: S, a: S::f64s, b: S::f64s) -> S::f64s {
        s.sub_f64s(a, b)
    }
    #[inline(always)]
    fn vmul<S: Simd>(s: S, a: S::f64s, b: S::f64s) -> S::f64s {
        s.mul_f64s(a, b)
    }
    #[inline(always)]
    fn vgt<S: Simd>(s: S, a: S::f64s, b: S::f64s) -> S::m64s {
        s.greater_than_f64s(a, b)
    }
    #[inline(always)]
    fn veq<S: Simd>(s: S, a: S::f64s, b: S::f64s) -> S::m64s {
        s.equal_f64s(a, b)
    }
    #[inline(always)]
    fn vselect<S: Simd>(s: S, m: S::m64s, a: S::f64s, b: S::f64s) -> S::f64s {
        s.select_f64s(m, a, b)
    }
    #[inline(always)]
    fn vdiv<S: Simd>(s: S, a: S::f64s, b: S::f64s) -> S::f64s {
        s.div_f64s(a, b)
    }
    #[inline(always)]
    fn vfma<S: Simd>(s: S, a: S::f64s, b: S::f64s, c: S::f64s) -> S::f64s {
        s.mul_add_e_f64s(a, b, c)
    }
    #[inline(always)]
    fn vfma_exact<S: Simd>(s: S, a: S::f64s, b: S::f64s, c: S::f64s) -> S::f64s {
        s.mul_add_f64s(a, b, c)
    }
    #[inline(always)]
    fn vmax<S: Simd>(s: S, a: S::f64s, b: S::f64s) -> S::f64s {
        s.max_f64s(a, b)
    }
    /// Cody–Waite reduction, degree-13 Taylor polynomial (truncation below
    /// 1e-17 relative), `2^k` built in the exponent bits with an integer
    /// multiply by 2^52. Inputs below −708 are clamped.
    #[inline(always)]
    fn vexp<S: Simd>(s: S, x: S::f64s) -> S::f64s {
        let x = s.max_f64s(x, s.splat_f64s(-708.0));
        let magic = s.splat_f64s(6755399441055744.0); // 1.5·2^52
        let t = s.mul_add_f64s(x, s.splat_f64s(core::f64::consts::LOG2_E), magic);
        let k = s.sub_f64s(t, magic);
        let r = s.mul_add_f64s(k, s.splat_f64s(-f64::from_bits(0x3FE6_2E42_FEE0_0000)), x);
        let r = s.mul_add_f64s(k, s.splat_f64s(-f64::from_bits(0x3DEA_39EF_3579_3C76)), r);
        const INV_FACT: [f64; 14] = [
            1.0,
            1.0,
            0.5,
            1.0 / 6.0,
            1.0 / 24.0,
            1.0 / 120.0,
            1.0 / 720.0,
            1.0 / 5040.0,
            1.0 / 40320.0,
            1.0 / 362880.0,
            1.0 / 3628800.0,
            1.0 / 39916800.0,
            1.0 / 479001600.0,
            1.0 / 6227020800.0,
        ];
        let mut p = s.splat_f64s(INV_FACT[13]);
        let mut i = 13;
        while i > 0 {
            i -= 1;
            p = s.mul_add_f64s(p, r, s.splat_f64s(INV_FACT[i]));
        }
        let kbits = s.sub_u64s(s.transmute_u64s_f64s(t), s.transmute_u64s_f64s(magic));
        let shifted = s.mul_u64s(kbits, s.splat_u64s(1u64 << 52));
        s.transmute_f64s_u64s(s.add_u64s(s.transmute_u64s_f64s(p), shifted))
    }
    #[inline(always)]
    fn vsum<S: Simd>(s: S, a: S::f64s) -> f64 {
        s.reduce_sum_f64s(a)
    }
    #[inline(always)]
    fn vhmax<S: Simd>(s: S, a: S::f64s) -> f64 {
        s.reduce_max_f64s(a)
    }
    #[inline(always)]
    fn split<S: Simd>(x: &[f64]) -> (&[S::f64s], &[f64]) {
        S::as_simd_f64s(x)
    }
    #[inline(always)]
    fn split_mut<S: Simd>(x: &mut [f64]) -> (&mut [S::f64s], &mut [f64]) {
        S::as_mut_simd_f64s(x)
    }
    #[inline(always)]
    fn load_tail<S: Simd>(s: S, x: &[f64]) -> S::f64s {
        s.partial_load_f64s(x)
    }
    #[inline(always)]
    fn store_tail<S: Simd>(s: S, x: &mut [f64], v: S::f64s) {
        s.partial_store_f64s(x, v)
    }
}
