//! The widening step of the half-precision forward, chosen at dispatch: how
//! one register of packed words (2L halves) becomes two f32 registers.
//!
//! - [`Soft`]: integer operations that every instruction set (and every
//!   emulated width) has; gives the L even elements and the L odd ones
//!   (`HalfFloat`'s `widen_pairs`).
//! - `CvtV4` (x86-64 with AVX-512): f16 through the hardware conversion
//!   `vcvtph2ps`, 16 halves at a time; gives the elements in order (the
//!   first L, then the next L), since the packed words are byte for byte the
//!   row of halves.
//! - `CvtF16c` (x86-64 with AVX2 and F16C, in `f16c.rs`): the same at AVX2
//!   width, 8 halves at a time.
//!
//! All are exact (every finite half is an f32), so the widened values are
//! the same; only the order of the samples they meet (and so the f32
//! summation order of a dot product) differs between them. A path is fixed
//! per process by the CPU, so results are deterministic on one machine;
//! machines that take different paths may differ by f32 rounding.

use super::HalfFloat;
use pulp::Simd;

/// A widening strategy for the vectors of `S`.
pub(crate) trait Widen<S: Simd>: Copy {
    /// Whether [`Widen::pairs`] gives the elements in order (the first L
    /// halves, then the next L) instead of the even ones, then the odd ones.
    #[cfg(test)]
    const IN_ORDER: bool;
    /// The 2L halves of the words `w` as two f32 registers.
    fn pairs(self, s: S, w: S::u32s) -> (S::f32s, S::f32s);
    /// The registers that [`Widen::pairs`]' two meet for a sample whose
    /// elements at the words' even and odd halves are `xe` and `xo`:
    /// `xe` and `xo` broadcast where the lanes are rows, the pair
    /// `(xe, xo)` repeated in both where they are a row's two halves.
    fn samples(self, s: S, xe: f32, xo: f32) -> (S::f32s, S::f32s);
    /// One sum per row, in row order, from the two accumulators of
    /// [`Widen::pairs`]' registers.
    fn fold(self, s: S, a: S::f32s, b: S::f32s) -> S::f32s;
}

/// Widening with integer operations at any width (even, then odd elements).
pub(crate) struct Soft<H>(pub core::marker::PhantomData<H>);

impl<H> Clone for Soft<H> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<H> Copy for Soft<H> {}

impl<S: Simd, H: HalfFloat> Widen<S> for Soft<H> {
    #[cfg(test)]
    const IN_ORDER: bool = false;
    #[inline(always)]
    fn pairs(self, s: S, w: S::u32s) -> (S::f32s, S::f32s) {
        H::widen_pairs(s, w)
    }
    #[inline(always)]
    fn samples(self, s: S, xe: f32, xo: f32) -> (S::f32s, S::f32s) {
        (s.splat_f32s(xe), s.splat_f32s(xo))
    }
    /// Lanes are rows in both: the even elements' sums plus the odd ones'.
    #[inline(always)]
    fn fold(self, s: S, a: S::f32s, b: S::f32s) -> S::f32s {
        s.add_f32s(a, b)
    }
}

/// `(xe, xo)` in every pair of f32 lanes, as a `u64` to broadcast.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn pair_bits(xe: f32, xo: f32) -> u64 {
    (xe.to_bits() as u64) | ((xo.to_bits() as u64) << 32)
}

/// f16 widened by AVX-512's `vcvtph2ps` (elements in order).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct CvtV4;

#[cfg(target_arch = "x86_64")]
impl Widen<pulp::x86::V4> for CvtV4 {
    #[cfg(test)]
    const IN_ORDER: bool = true;
    #[inline(always)]
    fn pairs(self, s: pulp::x86::V4, w: pulp::u32x16) -> (pulp::f32x16, pulp::f32x16) {
        use core::arch::x86_64::__m256i;
        let [a, b]: [__m256i; 2] = pulp::cast(w);
        (
            pulp::cast(s.avx512f._mm512_cvtph_ps(a)),
            pulp::cast(s.avx512f._mm512_cvtph_ps(b)),
        )
    }
    #[inline(always)]
    fn samples(self, s: pulp::x86::V4, xe: f32, xo: f32) -> (pulp::f32x16, pulp::f32x16) {
        let v = pulp::cast(s.splat_u64s(pair_bits(xe, xo)));
        (v, v)
    }
    /// Lanes `2u, 2u + 1` of `a` are row `u`'s halves, of `b` row `8 + u`'s.
    #[inline(always)]
    fn fold(self, s: pulp::x86::V4, a: pulp::f32x16, b: pulp::f32x16) -> pulp::f32x16 {
        use core::arch::x86_64::__m512i;
        const EVEN: [u32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
        const ODD: [u32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
        let (a, b) = (pulp::cast(a), pulp::cast(b));
        let f = &s.avx512f;
        let even = f._mm512_permutex2var_ps(a, pulp::cast::<_, __m512i>(EVEN), b);
        let odd = f._mm512_permutex2var_ps(a, pulp::cast::<_, __m512i>(ODD), b);
        pulp::cast(f._mm512_add_ps(even, odd))
    }
}
