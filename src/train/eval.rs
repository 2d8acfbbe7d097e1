//! Evaluation of a head on a labelled set: mean loss, top-1 and top-5.

use super::Dataset;
use crate::error::Result;
use crate::head::{ArcFaceHead, Batch, Workspace};
use crate::memory::try_filled;
use crate::real::Real;

/// Loss and accuracy of a head on a labelled set.
///
/// `loss` is the mean per-sample training loss (margins applied, as in the
/// training objective; see [`crate::Workspace::sample_losses`]) whatever the
/// reduction; `top1` and `top5` are fractions in [0, 1] from the inference
/// logits (no margin), ties broken towards the lower class as in
/// [`crate::Prediction::topk`].
///
/// ```
/// use arcface::{evaluate, ArcFaceHead, Dataset, HeadConfig};
/// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(2, 2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
/// let m = evaluate(&head, Dataset::new(&[0.9, 0.1, 0.2, 0.8, 1.0, 0.0], &[0, 1, 1]), 2).unwrap();
/// assert!((m.top1 - 2.0 / 3.0).abs() < 1e-12);
/// assert_eq!(m.top5, 1.0);
/// assert_eq!(m.samples, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalMetrics {
    /// Mean per-sample loss.
    pub loss: f64,
    /// Top-1 accuracy in [0, 1].
    pub top1: f64,
    /// Top-5 accuracy in [0, 1] (1 when C ≤ 5).
    pub top5: f64,
    /// Number of samples.
    pub samples: usize,
}

/// 0-based rank of class `y` in a logit row: classes with a larger logit, and
/// lower classes with an equal one, come first.
#[inline]
pub(super) fn rank_of(row: &[impl PartialOrd + Copy], y: usize) -> usize {
    let zy = row[y];
    let mut r = 0;
    for (c, &z) in row.iter().enumerate() {
        if z > zy || (c < y && z == zy) {
            r += 1;
        }
    }
    r
}

/// The sum of the per-sample losses of the batch last run in `ws`, in f64.
pub(super) fn loss_sum<T: Real>(ws: &Workspace<T>) -> f64 {
    ws.sample_losses().iter().map(|v| v.to_f64()).sum::<f64>()
}

/// Reusable evaluation buffers.
pub(super) struct Evaluator<T> {
    ws: Workspace<T>,
    logits: Vec<T>,
    batch: usize,
}

impl<T: Real> Evaluator<T> {
    /// Buffers for batches of `batch`: an inference workspace (evaluation
    /// needs no weight gradient) and the batch's logits.
    pub(super) fn new(head: &ArcFaceHead<T>, batch: usize) -> Result<Self> {
        let batch = batch.max(1);
        let c = head.config().num_classes;
        let len = batch.saturating_mul(c);
        Ok(Self {
            ws: Workspace::try_inference(head, batch)?,
            logits: try_filled(len, T::ZERO, "evaluation logits")?,
            batch,
        })
    }

    /// The metrics of `head` on `data`, which must be valid for it.
    pub(super) fn run(
        &mut self,
        head: &ArcFaceHead<T>,
        data: Dataset<'_, T>,
    ) -> Result<EvalMetrics> {
        let (d, c) = (head.config().in_channels, head.config().num_classes);
        let n = data.len();
        let (mut loss, mut top1, mut top5) = (0.0f64, 0usize, 0usize);
        let mut start = 0;
        while start < n {
            let end = (start + self.batch).min(n);
            let m = end - start;
            let x = &data.features[start * d..end * d];
            let y = &data.labels[start..end];
            head.loss(&Batch::new(x, y), &mut self.ws)?;
            loss += loss_sum(&self.ws);
            head.logits_into(x, &mut self.ws, &mut self.logits[..m * c])?;
            for (row, &label) in self.logits[..m * c].chunks_exact(c).zip(y) {
                let r = rank_of(row, label as usize);
                top1 += (r < 1) as usize;
                top5 += (r < 5) as usize;
            }
            start = end;
        }
        let nf = n as f64;
        Ok(EvalMetrics {
            loss: loss / nf,
            top1: top1 as f64 / nf,
            top5: top5 as f64 / nf,
            samples: n,
        })
    }
}

/// Evaluates `head` on `data` in chunks of `batch_size` samples (see
/// [`EvalMetrics`]). Bad data (shapes, labels, NaN) is an error naming the
/// sample.
///
/// ```
/// use arcface::{evaluate, ArcFaceHead, Dataset, Error, HeadConfig};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 0).unwrap();
/// let m = evaluate(&head, Dataset::new(&[1.0, 0.0, 0.0, 1.0], &[0, 2]), 64).unwrap();
/// assert_eq!(m.top5, 1.0); // three classes: always in the top 5
/// let err = evaluate(&head, Dataset::new(&[1.0, 0.0], &[3]), 64).unwrap_err();
/// assert!(matches!(err, Error::LabelOutOfRange { sample: 0, label: 3, .. }));
/// ```
pub fn evaluate<T: Real>(
    head: &ArcFaceHead<T>,
    data: Dataset<'_, T>,
    batch_size: usize,
) -> Result<EvalMetrics> {
    data.validate(head, "features")?;
    Evaluator::new(head, batch_size.min(data.len()))?.run(head, data)
}
