//! The head's SIMD row kernels as plain slice functions, for benchmarks and
//! for users who want the same arithmetic elsewhere. Each call dispatches to
//! the best instruction set of the machine (see [`crate::simd_level`]).
//!
//! ```
//! let mut row = [1.0f32, 2.0, 3.0];
//! arcface::ops::softmax(&mut row);
//! assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! ```

use crate::kernels::{DivInPlace, Dot, ExpShiftSum, ProjectOut, RowMax, SumSq};
use crate::real::Real;

/// $\sum_j x_j^2$ (four independent accumulators).
///
/// ```
/// assert_eq!(arcface::ops::sum_squares(&[3.0f32, 4.0]), 25.0);
/// ```
pub fn sum_squares<T: Real>(x: &[T]) -> T {
    crate::simd::arch().dispatch(SumSq { x })
}

/// $\sum_j a_j b_j$ over the common length.
///
/// ```
/// assert_eq!(arcface::ops::dot(&[1.0f64, 2.0], &[3.0, 4.0]), 11.0);
/// ```
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    crate::simd::arch().dispatch(Dot { a, b })
}

/// Normalises every row of a row-major matrix with `d` columns in place,
/// $\hat v = v / \max(\lVert v\rVert, 10^{-12})$ (`F.normalize`).
///
/// ```
/// let mut x = [3.0f32, 4.0, 0.0, 0.0];
/// arcface::ops::normalize_rows(&mut x, 2);
/// assert_eq!(x, [0.6, 0.8, 0.0, 0.0]);
/// ```
pub fn normalize_rows<T: Real>(x: &mut [T], d: usize) {
    if d == 0 {
        return;
    }
    let arch = crate::simd::arch();
    let eps = T::from_f64(crate::NORM_EPS);
    for row in x.chunks_exact_mut(d) {
        let n = arch.dispatch(SumSq { x: row }).sqrt_();
        let n = if n > eps { n } else { eps };
        arch.dispatch(DivInPlace { x: row, k: n });
    }
}

/// Softmax of a row in place: $e^{x_j - \max x} / \sum_k e^{x_k - \max x}$.
///
/// ```
/// let mut x = [0.0f32, 0.0];
/// arcface::ops::softmax(&mut x);
/// assert_eq!(x, [0.5, 0.5]);
/// ```
pub fn softmax<T: Real>(x: &mut [T]) {
    let arch = crate::simd::arch();
    let m = arch.dispatch(RowMax { x });
    let s = arch.dispatch(ExpShiftSum { x, shift: m });
    let inv = T::ONE / s;
    x.iter_mut().for_each(|v| *v *= inv);
}

/// $\log \sum_j e^{x_j}$, computed stably; `scratch` must be as long as `x`.
///
/// ```
/// let x = [1.0f64, 1.0];
/// let mut s = [0.0; 2];
/// assert!((arcface::ops::log_sum_exp(&x, &mut s) - (1.0 + 2f64.ln())).abs() < 1e-15);
/// ```
pub fn log_sum_exp<T: Real>(x: &[T], scratch: &mut [T]) -> T {
    let arch = crate::simd::arch();
    let m = arch.dispatch(RowMax { x });
    let s = &mut scratch[..x.len()];
    s.copy_from_slice(x);
    m + arch.dispatch(ExpShiftSum { x: s, shift: m }).ln_()
}

/// The normalisation Jacobian on a row gradient:
/// $g \leftarrow a\,(g - c^2 (v\cdot g)\, v)$ (see the crate docs).
///
/// ```
/// let mut g = [1.0f32, 1.0];
/// arcface::ops::project_out(&mut g, &[1.0, 0.0], 1.0, 1.0);
/// assert_eq!(g, [0.0, 1.0]);
/// ```
pub fn project_out<T: Real>(g: &mut [T], v: &[T], a: T, c: T) {
    crate::simd::arch().dispatch(ProjectOut { g, v, a, c });
}
