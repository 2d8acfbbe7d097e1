//! The small-batch products (N ≤ 16): the forward `Pᵀ = W X̂ᵀ` and the fused
//! backward (∂W rows projected against W, and ∂X̂) in one sweep over W each.
//!
//! At these sizes the step is memory-bound: W is read once (and ∂W written
//! once) per step, so the kernels are small products in register blocks,
//! like a GEMM micro-kernel without packing: a block of weight rows stays in
//! L1 while it meets every sample. [`forward::SmallForward`] and
//! [`backward::SmallBackward`] say how their blocks are shaped; both fetch
//! lines ahead of the sweep through [`Prefetch`].
//!
//! Measured timings behind these choices, with the commands that produced
//! them, are in `docs/perf.md` (its kernels section).

use crate::real::Real;
use pulp::Simd;

mod backward;
mod forward;

pub(crate) use backward::{small_backward_scratch, SmallBackward};
pub(crate) use forward::SmallForward;

/// Software prefetch of cache lines (x86: `prefetcht2` through pulp's safe
/// SSE token; a no-op elsewhere).
///
/// The small-batch forward sweeps each block of weight rows once per group
/// of samples: only the first sweep reads memory, so the hardware
/// prefetchers see the stream pause. With more than one sample it fetches
/// the block two ahead, spread over all of a block's sweeps; a single
/// sample's one sweep per block is left to the hardware prefetchers, which
/// were faster there alone. The small-batch backward fetches the next
/// block's lines of W and of ∂W, spread evenly over the block's sweep: ∂W's
/// are the lines it will write, so the stores find them in cache instead of
/// waiting for ownership (fetching W's lines alone did not help). The hint
/// is T2 for both: T0 was no better in the forward and worse in the
/// backward.
#[derive(Clone, Copy)]
pub(in crate::kernels) struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    v1: Option<pulp::x86::V1>,
}
impl Prefetch {
    pub(in crate::kernels) fn new() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            v1: pulp::x86::V1::try_new(),
        }
    }
    /// Line `at` (64 bytes) of `x`, if `x` has it.
    #[inline(always)]
    pub(in crate::kernels) fn line<T>(self, x: &[T], at: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v1) = self.v1 {
            if at * 64 < core::mem::size_of_val(x) {
                fetch(v1, (x.as_ptr() as *const i8).wrapping_add(at * 64));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (x, at);
    }
    /// Lines `first .. first + count` (64 bytes each) of `x`, clipped to it.
    #[inline(always)]
    pub(in crate::kernels) fn lines<T>(self, x: &[T], first: usize, count: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v1) = self.v1 {
            let base = x.as_ptr() as *const i8;
            let end = (first + count).min(core::mem::size_of_val(x).div_ceil(64));
            for l in first..end {
                fetch(v1, base.wrapping_add(l * 64));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (x, first, count);
    }
}

/// The one prefetch the kernels issue: the line at `p` into L2 (T2; L1 is
/// left to the rows being read).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fetch(v1: pulp::x86::V1, p: *const i8) {
    v1.sse
        ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T2 }>(p);
}

/// Lanes of `T` in one register of `S`.
#[inline(always)]
fn lanes<T: Real, S: Simd>(_: S) -> usize {
    core::mem::size_of::<T::V<S>>() / core::mem::size_of::<T>()
}
