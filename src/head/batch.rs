//! [`Batch`]: the inputs of one step.

/// One mini-batch: features (N×D, row-major), hard labels (N), and optional
/// soft targets (N×C, mixup's `gt_score`) and per-sample weights (N).
///
/// The margin is always applied at the hard label; soft targets, when given,
/// replace the one-hot target in the loss (as upstream's `loss()` does).
///
/// ```
/// use arcface::Batch;
/// let x = [1.0f32, 0.0, 0.0, 1.0];
/// let b = Batch::new(&x, &[0, 1]);
/// assert_eq!(b.len(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a, T> {
    /// N×D features, row-major.
    pub features: &'a [T],
    /// N labels in `0..num_classes`.
    pub labels: &'a [i64],
    /// Optional N×C soft targets.
    pub soft_targets: Option<&'a [T]>,
    /// Optional N per-sample loss weights (upstream's `weight=` kwarg).
    pub sample_weights: Option<&'a [T]>,
}

impl<'a, T> Batch<'a, T> {
    /// A batch of hard labels.
    ///
    /// ```
    /// let b = arcface::Batch::new(&[0.5f32, 0.5], &[0]);
    /// assert!(b.soft_targets.is_none() && b.sample_weights.is_none());
    /// ```
    pub fn new(features: &'a [T], labels: &'a [i64]) -> Self {
        Self {
            features,
            labels,
            soft_targets: None,
            sample_weights: None,
        }
    }
    /// Adds soft targets (N×C).
    ///
    /// ```
    /// let x = [1.0f32, 0.0];
    /// let t = [0.3f32, 0.7];
    /// let b = arcface::Batch::new(&x, &[1]).with_soft_targets(&t);
    /// assert!(b.soft_targets.is_some());
    /// ```
    pub fn with_soft_targets(mut self, t: &'a [T]) -> Self {
        self.soft_targets = Some(t);
        self
    }
    /// Adds per-sample weights (N).
    ///
    /// ```
    /// let x = [1.0f32, 0.0];
    /// let b = arcface::Batch::new(&x, &[1]).with_sample_weights(&[0.5]);
    /// assert!(b.sample_weights.is_some());
    /// ```
    pub fn with_sample_weights(mut self, w: &'a [T]) -> Self {
        self.sample_weights = Some(w);
        self
    }
    /// N, the number of samples.
    ///
    /// ```
    /// assert_eq!(arcface::Batch::new(&[0.0f32; 6], &[0, 1, 2]).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// `true` when the batch holds no sample.
    ///
    /// ```
    /// assert!(arcface::Batch::<f32>::new(&[], &[]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}
