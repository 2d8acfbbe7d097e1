//! The head's SIMD kernels, each written once over [`pulp::Simd`] and
//! [`Real`](crate::real::Real).
//!
//! Every kernel is a struct implementing [`pulp::WithSimd`]; production code
//! runs it through the head's cached [`pulp::Arch`] (AVX-512, AVX2+FMA, NEON
//! or scalar, detected once), and the tests run the very same code at every
//! emulated width (`Scalar`, `Scalar128b`, `Scalar256b`, `Scalar512b`) and
//! the dispatched one, in f32 and f64, against the f64 oracles of the
//! test-only `reference` module (one per kernel).
//!
//! The families:
//!
//! - [`rows`]: row-major kernels over rows of D: squared norms, dots,
//!   divisions (the normalisation of features and weights) and the
//!   normalisation Jacobian applied to gradients.
//! - [`small_gemm`]: the small-batch (N ≤ 16) forward and fused backward, in
//!   register blocks with software prefetch.
//! - [`subcentre`]: the maximum over a class's sub-centres and the gradient
//!   handed back to the arg-max one.
//! - [`softmax`]: the row maximum, the scaled cosine logits with their
//!   running maximum, and the cross-entropy's loss and gradient terms.
//! - [`half`]: the serving forward over f16 or bf16 weight rows, widened
//!   in registers.
//! - [`exp`]: the exponentials of the softmax, and the error bound of the
//!   vector `exp`: relative error below 3e-7 (f32) and 5e-16 (f64) on the
//!   softmax domain $x \le 0$ down to the clamp, identical arithmetic on
//!   every instruction set.
//!
//! Row-major kernels take a row (or rows of `d`) of one sample or weight;
//! class-major ones take a row of Pᵀ, one class for every sample of the
//! batch. Measured timings behind the kernels' shapes are in
//! `docs/perf.md` (its kernels section).

mod exp;
mod half;
mod rows;
mod small_gemm;
mod softmax;
mod subcentre;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub(crate) use exp::{ExpShiftSum, ExpSumInto};
pub use half::HalfFloat;
pub(crate) use half::{
    interleave_samples, pack_row, panel_index, panel_words, unpack_row, HalfForward, PANEL,
};
pub(crate) use rows::{DivInPlace, DivRows, Dot, ProjectOut, ProjectRows, RowSumSq, SumSq};
pub(crate) use small_gemm::{small_backward_scratch, SmallBackward, SmallForward};
pub(crate) use softmax::{ColGrad, GapInto, MaxInto, RowMax, ScaleDiv, VRow};
pub(crate) use subcentre::{Expand, SubcentreMax};
