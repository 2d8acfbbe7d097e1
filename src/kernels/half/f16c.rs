//! f16 widened by F16C's `vcvtph2ps` on AVX2 machines (pulp's AVX2 level
//! does not enable F16C, so its intrinsics are unsafe to call): the crate's
//! one use of `unsafe` in the kernels, confined here. [`CvtF16c`] exists
//! only once the CPU's F16C is detected, and the forward runs in a function
//! compiled for pulp's V3 features and F16C so that the conversion is
//! inlined. Forced on the AVX-512 reference host (100 000 rows of D = 512,
//! under load from a build), it took 0.69 × the integer widening's time at
//! N = 1 and about 0.57 × at N = 8 at the same AVX2 width (with the
//! previous row-per-register layout; not measured on an AVX2-only machine).
#![allow(unsafe_code)]

use super::{HalfFloat, HalfForward, Widen};
use core::arch::x86_64::{__m128i, _mm256_cvtph_ps};
use pulp::x86::V3;
use pulp::Simd;

/// f16 widened by F16C (elements in order); its value proves the CPU has
/// F16C.
#[derive(Clone, Copy)]
pub(crate) struct CvtF16c(());

impl CvtF16c {
    /// The strategy, where the CPU has F16C.
    pub(crate) fn detect() -> Option<Self> {
        std::arch::is_x86_feature_detected!("f16c").then_some(Self(()))
    }
}

impl Widen<V3> for CvtF16c {
    #[cfg(test)]
    const IN_ORDER: bool = true;
    #[inline(always)]
    fn pairs(self, _: V3, w: pulp::u32x8) -> (pulp::f32x8, pulp::f32x8) {
        let [a, b]: [__m128i; 2] = pulp::cast(w);
        // SAFETY: a `CvtF16c` is made only by `detect`, after the CPU's F16C
        // was detected; the intrinsic has no other precondition.
        unsafe {
            (
                pulp::cast(_mm256_cvtph_ps(a)),
                pulp::cast(_mm256_cvtph_ps(b)),
            )
        }
    }
    #[inline(always)]
    fn samples(self, s: V3, xe: f32, xo: f32) -> (pulp::f32x8, pulp::f32x8) {
        let v = pulp::cast(s.splat_u64s(super::widen::pair_bits(xe, xo)));
        (v, v)
    }
    /// Lanes `2u, 2u + 1` of `a` are row `u`'s halves, of `b` row `4 + u`'s:
    /// the pairwise sums (rows 0, 1, 4, 5 | 2, 3, 6, 7), then the 64-bit
    /// lanes in row order.
    #[inline(always)]
    fn fold(self, s: V3, a: pulp::f32x8, b: pulp::f32x8) -> pulp::f32x8 {
        let h = s.avx._mm256_hadd_ps(pulp::cast(a), pulp::cast(b));
        pulp::cast(s.avx2._mm256_permute4x64_pd::<0b11_01_10_00>(pulp::cast(h)))
    }
}

/// The forward on AVX2 with F16C widening.
pub(crate) fn forward<H: HalfFloat>(k: HalfForward<'_, H>, v3: V3, cvt: CvtF16c) {
    // SAFETY: `v3` proves every feature of pulp's V3 level, `cvt` proves
    // F16C: every feature `on_v3_f16c` is compiled for.
    unsafe { on_v3_f16c(k, v3, cvt) }
}

/// [`forward`], compiled for the features its tokens prove.
#[target_feature(
    enable = "sse,sse2,fxsr,sse3,ssse3,sse4.1,sse4.2,popcnt,avx,avx2,bmi1,bmi2,fma,lzcnt,f16c"
)]
unsafe fn on_v3_f16c<H: HalfFloat>(k: HalfForward<'_, H>, v3: V3, cvt: CvtF16c) {
    k.run_with(v3, cvt)
}
