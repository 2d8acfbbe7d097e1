//! Checks made before any work: batch shapes, labels, soft targets, sample
//! weights, the workspace's shape, and whether the loss's weights leave
//! room in T. Each returns a typed error and changes nothing.

use super::{ArcFaceHead, Batch, Workspace};
use crate::error::{Error, Result};
use crate::real::Real;

impl<T: Real> ArcFaceHead<T> {
    /// N of a feature matrix (N×D, row-major, N ≥ 1).
    pub(super) fn batch_size(&self, features: &[T]) -> Result<usize> {
        batch_size(features.len(), self.cfg.in_channels)
    }

    /// Every label in `0..C`, none naming a retired class.
    pub(crate) fn check_labels(&self, labels: &[i64]) -> Result<()> {
        crate::error::check_labels(labels, self.cfg.num_classes)?;
        self.check_not_retired(labels)
    }

    /// N of a training batch, after checking its shapes, labels, soft
    /// targets (finite, present when `use_soft`) and sample weights
    /// (finite). The features' finiteness is checked by the normalisation.
    pub(super) fn validate_batch(&self, batch: &Batch<'_, T>) -> Result<usize> {
        let n = batch.labels.len();
        let (c, _, _, d) = self.dims();
        if n == 0 {
            return Err(Error::EmptyBatch);
        }
        if batch.features.len() != n * d {
            return Err(Error::Shape {
                what: "features",
                expected: n * d,
                got: batch.features.len(),
            });
        }
        self.check_labels(batch.labels)?;
        match batch.soft_targets {
            Some(t) => {
                check_finite_matrix("soft_targets", t, n, c)?;
                self.check_soft_not_retired(t)?;
            }
            None if self.cfg.loss.use_soft => return Err(Error::MissingSoftTargets),
            None => {}
        }
        if let Some(w) = batch.sample_weights {
            check_finite_matrix("sample_weights", w, n, 1)?;
        }
        Ok(n)
    }

    /// The workspace was made for this head's shape, and the weights are
    /// usable.
    pub(super) fn workspace_for(&self, ws: &Workspace<T>) -> Result<()> {
        let (c, _, ck, d) = self.dims();
        let s = &ws.shape;
        if (s.c, s.ck(), s.d) != (c, ck, d) {
            return Err(Error::InvalidConfig {
                field: "workspace",
                reason: format!(
                    "was made for C = {}, C·K = {}, D = {}; this head has C = {c}, C·K = {ck}, D = {d}",
                    s.c,
                    s.ck(),
                    s.d,
                ),
            });
        }
        self.check_weight()
    }

    /// The loss's weights must leave room in T: |loss_weight|, every class
    /// weight and their product with the scale stay well inside its range.
    pub(super) fn check_loss_fits(&self) -> Result<()> {
        let limit = T::MAX.to_f64().sqrt();
        let l = &self.cfg.loss;
        let cw_max = l
            .class_weight
            .as_ref()
            .map_or(1.0, |w| w.iter().fold(0.0f64, |m, v| m.max(v.abs())));
        for (field, v) in [
            ("loss_weight", l.loss_weight.abs()),
            ("class_weight", cw_max),
        ] {
            if v * self.cfg.scale.abs().max(1.0) > limit {
                return Err(crate::config::invalid(
                    field,
                    format!(
                        "is {v}: times the scale it leaves no range for the loss in {}",
                        T::NAME
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `m` holds `rows × cols` finite values; the error names the first
/// non-finite one.
fn check_finite_matrix<T: Real>(
    what: &'static str,
    m: &[T],
    rows: usize,
    cols: usize,
) -> Result<()> {
    if m.len() != rows * cols {
        return Err(Error::Shape {
            what,
            expected: rows * cols,
            got: m.len(),
        });
    }
    match m.iter().position(|v| !v.is_finite_()) {
        Some(p) => Err(Error::NonFinite {
            what,
            row: p / cols,
            col: p % cols,
        }),
        None => Ok(()),
    }
}

/// N of a feature matrix of `len` values in rows of `d` (N ≥ 1).
pub(crate) fn batch_size(len: usize, d: usize) -> Result<usize> {
    if len == 0 {
        return Err(Error::EmptyBatch);
    }
    if !len.is_multiple_of(d) {
        return Err(Error::Shape {
            what: "features",
            expected: len.div_ceil(d) * d,
            got: len,
        });
    }
    Ok(len / d)
}
