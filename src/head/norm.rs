//! Row norms and the normalisation of the features,
//! $\hat v = v / \max(\lVert v\rVert, \epsilon)$ (`F.normalize`), overflow-safe.

use super::{ArcFaceHead, Workspace};
use crate::error::{Error, Result};
use crate::kernels::{DivRows, RowSumSq};
use crate::real::Real;

/// The normalisation epsilon of `F.normalize`: $\hat v = v / \max(\lVert v\rVert, 10^{-12})$.
///
/// ```
/// assert_eq!(arcface::NORM_EPS, 1e-12);
/// ```
pub const NORM_EPS: f64 = 1e-12;

/// $\max(\lVert v\rVert, \epsilon)$, and whether $\lVert v\rVert > \epsilon$, from the
/// row's sum of squares `ss`, overflow-safe; an error names a non-finite
/// entry or an overflowing norm.
pub(crate) fn clamped_norm<T: Real>(ss: T, v: &[T]) -> core::result::Result<(T, bool), NormError> {
    let norm = if ss.is_finite_() {
        ss.sqrt_()
    } else {
        if let Some(col) = v.iter().position(|x| !x.is_finite_()) {
            return Err(NormError::NonFinite(col));
        }
        // overflow of the squares: scale by the largest magnitude
        let amax = max_abs(v);
        let s = v.iter().fold(T::ZERO, |acc, x| {
            let y = *x / amax;
            acc + y * y
        });
        amax * s.sqrt_()
    };
    if !norm.is_finite_() {
        return Err(NormError::Overflow);
    }
    let eps = T::from_f64(NORM_EPS);
    if norm > eps {
        Ok((norm, true))
    } else {
        Ok((eps, false))
    }
}

/// $\max_j |v_j|$.
fn max_abs<T: Real>(v: &[T]) -> T {
    v.iter()
        .fold(T::ZERO, |m, x| if x.abs_() > m { x.abs_() } else { m })
}

/// Why a row has no usable norm.
pub(crate) enum NormError {
    /// A NaN or infinity at this column.
    NonFinite(usize),
    /// Finite entries whose norm exceeds the working precision.
    Overflow,
}

impl NormError {
    /// The error for row `row` of `what`.
    pub(crate) fn into_error(self, what: &'static str, row: usize) -> Error {
        match self {
            NormError::NonFinite(col) => Error::NonFinite { what, row, col },
            NormError::Overflow => Error::Overflow { what, row },
        }
    }
}

impl<T: Real> ArcFaceHead<T> {
    /// Validates the features (finite) and writes x̂, 1/‖x‖ and the
    /// projection switch into the workspace.
    pub(super) fn normalize_features(
        &self,
        features: &[T],
        ws: &mut Workspace<T>,
        n: usize,
    ) -> Result<()> {
        let d = self.cfg.in_channels;
        ws.reserve(n, self.threads.count())?;
        let f = &mut ws.features;
        // the norms go to `inv_norm` first, inverted at the end
        self.arch.dispatch(RowSumSq {
            x: features,
            d,
            out: &mut f.inv_norm[..n],
        });
        // rows whose norm overflows T are normalised in two steps below
        let mut huge = false;
        for (i, row) in features.chunks_exact(d).enumerate() {
            let (norm, above) = match clamped_norm(f.inv_norm[i], row) {
                Ok(v) => v,
                Err(NormError::Overflow) => {
                    huge = true;
                    (T::from_f64(f64::INFINITY), true)
                }
                Err(e) => return Err(e.into_error("features", i)),
            };
            f.inv_norm[i] = norm;
            f.proj[i] = if above { T::ONE } else { T::ZERO };
        }
        self.arch.dispatch(DivRows {
            src: features,
            dst: &mut f.unit[..n * d],
            d,
            k: &f.inv_norm[..n],
        });
        if huge {
            // x̂ = (x / max|x|) / ‖x / max|x|‖: finite, and 1/‖x‖ rounds to 0
            for (i, (src, dst)) in features
                .chunks_exact(d)
                .zip(f.unit.chunks_exact_mut(d))
                .enumerate()
            {
                if f.inv_norm[i].is_finite_() {
                    continue;
                }
                let amax = max_abs(src);
                let mut ss = T::ZERO;
                for (o, x) in dst.iter_mut().zip(src) {
                    *o = *x / amax;
                    ss += *o * *o;
                }
                let norm = ss.sqrt_();
                dst.iter_mut().for_each(|o| *o /= norm);
            }
        }
        for v in &mut f.inv_norm[..n] {
            *v = T::ONE / *v;
        }
        Ok(())
    }
}

impl<T: Real> ArcFaceHead<T> {
    /// One feature row normalised into `out` exactly as
    /// [`Self::normalize_features`] normalises row `row` of a batch (the
    /// error names that row): for passes over samples that need x̂ but no
    /// step's workspace.
    pub(crate) fn unit_row(&self, x: &[T], row: usize, out: &mut [T]) -> Result<()> {
        unit_row(self.arch, x, row, out)
    }
}

/// One feature row `x` normalised into `out` as the head normalises row
/// `row` of a batch (overflow-safe; the error names that row).
pub(crate) fn unit_row<T: Real>(
    arch: pulp::Arch,
    x: &[T],
    row: usize,
    out: &mut [T],
) -> Result<()> {
    let d = x.len();
    let mut ss = [T::ZERO];
    arch.dispatch(RowSumSq { x, d, out: &mut ss });
    match clamped_norm(ss[0], x) {
        Ok((norm, _)) => {
            arch.dispatch(DivRows {
                src: x,
                dst: out,
                d,
                k: &[norm],
            });
        }
        Err(NormError::Overflow) => {
            let amax = max_abs(x);
            let mut ss = T::ZERO;
            for (o, v) in out.iter_mut().zip(x) {
                *o = *v / amax;
                ss += *o * *o;
            }
            let norm = ss.sqrt_();
            out.iter_mut().for_each(|o| *o /= norm);
        }
        Err(e) => return Err(e.into_error("features", row)),
    }
    Ok(())
}
