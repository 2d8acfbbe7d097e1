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
    const IN_ORDER: bool;
    /// The 2L halves of the words `w` as two f32 registers.
    fn pairs(self, s: S, w: S::u32s) -> (S::f32s, S::f32s);
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
    const IN_ORDER: bool = false;
    #[inline(always)]
    fn pairs(self, s: S, w: S::u32s) -> (S::f32s, S::f32s) {
        H::widen_pairs(s, w)
    }
}

/// f16 widened by AVX-512's `vcvtph2ps` (elements in order).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct CvtV4;

#[cfg(target_arch = "x86_64")]
impl Widen<pulp::x86::V4> for CvtV4 {
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
}
