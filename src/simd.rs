//! The crate-private SIMD vocabulary: every kernel is written once over
//! [`pulp::Simd`] and instantiated for `f32` and `f64` at every vector width.
//!
//! [`SimdReal`] is a supertrait of [`crate::Real`] declared `pub` inside this
//! private module: kernels bounded by `T: Real` call `T::splat`, `T::vadd`,
//! name `T::V<S>` and so on, while users of the crate can neither name nor
//! implement it (it also seals `Real`). The instruction set is detected once
//! per process ([`arch`]).

use pulp::{Arch, Simd};
use std::sync::OnceLock;

/// The instruction set of this machine, detected on first use and then held
/// (pulp's `Arch::new` probes the CPU features).
pub(crate) fn arch() -> Arch {
    static ARCH: OnceLock<Arch> = OnceLock::new();
    *ARCH.get_or_init(Arch::new)
}

/// The SIMD instruction set pulp dispatches to on this machine: `"avx512"`,
/// `"avx2"`, `"neon"` or `"scalar"`.
///
/// ```
/// let level = arcface::simd_level();
/// #[cfg(target_arch = "aarch64")]
/// assert_eq!(level, "neon");
/// # let _ = level;
/// ```
pub fn simd_level() -> &'static str {
    #[allow(unreachable_patterns)]
    match arch() {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Arch::V4(_) => "avx512",
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Arch::V3(_) => "avx2",
        #[cfg(target_arch = "aarch64")]
        Arch::Neon(_) => "neon",
        _ => "scalar",
    }
}

/// Lane-wise operations on registers of `Self` for any instruction set `S`:
/// the vocabulary the kernels are written in. Implemented for `f32` and
/// `f64` only.
pub trait SimdReal: Copy + Sized + 'static {
    /// A SIMD register of this type for the instruction set `S`.
    type V<S: Simd>: Copy;
    /// A lane mask of this type for `S`.
    type M<S: Simd>: Copy;

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
    /// Lane-wise `a > b`.
    fn vgt<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::M<S>;
    /// Lane-wise `a == b`.
    fn veq<S: Simd>(s: S, a: Self::V<S>, b: Self::V<S>) -> Self::M<S>;
    /// Lane-wise `m ? a : b`.
    fn vselect<S: Simd>(s: S, m: Self::M<S>, a: Self::V<S>, b: Self::V<S>) -> Self::V<S>;
    /// Lane-wise `exp(x)` for `x <= 0` (the error bounds are given at each
    /// implementation).
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

impl SimdReal for f32 {
    type V<S: Simd> = S::f32s;
    type M<S: Simd> = S::m32s;

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

impl SimdReal for f64 {
    type V<S: Simd> = S::f64s;
    type M<S: Simd> = S::m64s;

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
