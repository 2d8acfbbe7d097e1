//! The borrowed training or evaluation data, and its checks against a head.

use crate::error::{check_finite, check_labels, check_len, Error, Result};
use crate::head::ArcFaceHead;
use crate::real::Real;

/// Embeddings (N×D, row-major) and their labels (N), borrowed.
///
/// ```
/// let x = [0.0f32, 1.0, 1.0, 0.0];
/// let data = arcface::Dataset::new(&x, &[1, 0]);
/// assert_eq!(data.len(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a, T> {
    /// N×D features, row-major.
    pub features: &'a [T],
    /// N labels in `0..num_classes`.
    pub labels: &'a [i64],
}

impl<'a, T: Real> Dataset<'a, T> {
    /// Pairs features with labels (checked when used).
    ///
    /// ```
    /// let d = arcface::Dataset::new(&[0.5f64, 0.5], &[0]);
    /// assert_eq!(d.features.len(), 2);
    /// ```
    pub fn new(features: &'a [T], labels: &'a [i64]) -> Self {
        Self { features, labels }
    }

    /// N, the number of samples.
    ///
    /// ```
    /// assert_eq!(arcface::Dataset::new(&[1.0f32; 6], &[0, 1, 0]).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` without samples.
    ///
    /// ```
    /// assert!(arcface::Dataset::<f32>::new(&[], &[]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Checks shapes, labels (`0..C`) and finiteness against `head`; errors
    /// name the sample (its index in the data set).
    pub(super) fn validate(&self, head: &ArcFaceHead<T>, what: &'static str) -> Result<()> {
        let cfg = head.config();
        let (d, c) = (cfg.in_channels, cfg.num_classes);
        let n = self.labels.len();
        if n == 0 {
            return Err(Error::EmptyBatch);
        }
        check_len(what, self.features.len(), n * d)?;
        check_labels(self.labels, c)?;
        check_finite(what, self.features, d)
    }
}
