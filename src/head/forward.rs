//! The forward products and inference: Pᵀ = W X̂ᵀ (routed by batch size),
//! inference and training logits, and `predict`.

use super::class_pass::Mode;
use super::{ArcFaceHead, Workspace};
use crate::error::{Error, Result};
use crate::gemm;
use crate::kernels::{ExpShiftSum, RowMax, SmallForward};
use crate::memory::try_filled;
use crate::parallel::{for_blocks, Rows};
use crate::real::Real;

/// Predicted scores and labels (`ClsHead.predict`).
///
/// ```
/// # use arcface::*;
/// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(2, 2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
/// let p = head.predict(&[0.2, 0.9]).unwrap();
/// assert_eq!(p.labels, vec![1]);
/// assert_eq!(p.topk(2)[0][0].0, 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction<T> {
    /// N×C softmax of the inference logits.
    pub scores: Vec<T>,
    /// N arg-max labels (lowest index on ties).
    pub labels: Vec<usize>,
    /// C, the row length of `scores`.
    pub num_classes: usize,
    /// The head's retired classes, ascending: their scores are 0 and
    /// [`Self::topk`] never returns them.
    pub retired: Vec<usize>,
}

impl<T: Real> Prediction<T> {
    /// For each sample, the `k` best `(class, score)` pairs, best first, lower
    /// class first among equal scores; retired classes are skipped (fewer
    /// than `k` pairs when `k` exceeds the active classes).
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(3, 2), &[1.0, 0.0, 0.0, 1.0, -1.0, 0.0]).unwrap();
    /// let top = head.predict(&[1.0, 0.2]).unwrap().topk(2);
    /// assert_eq!(top[0].iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1]);
    /// ```
    pub fn topk(&self, k: usize) -> Vec<Vec<(usize, T)>> {
        self.scores
            .chunks(self.num_classes.max(1))
            .map(|row| {
                let mut idx: Vec<usize> = (0..row.len())
                    .filter(|c| self.retired.binary_search(c).is_err())
                    .collect();
                idx.sort_by(|&a, &b| {
                    row[b]
                        .partial_cmp(&row[a])
                        .unwrap_or(core::cmp::Ordering::Equal)
                        .then(a.cmp(&b))
                });
                idx.into_iter().take(k).map(|c| (c, row[c])).collect()
            })
            .collect()
    }
}

impl<T: Real> ArcFaceHead<T> {
    /// Products Pᵀ = W X̂ᵀ ((C·K)×N, class-major) into `ws.products`.
    ///
    /// Batches of at most [`super::SMALL_BATCH`] stream W once, each row against
    /// every sample (no packing copy); larger ones go through faer.
    pub(super) fn products(&self, ws: &mut Workspace<T>, n: usize) {
        let (_, _, ck, d) = self.dims();
        let threads = self.threads.count();
        let xn = &ws.features.unit[..n * d];
        let pt = &mut ws.products[..ck * n];
        if !Self::is_small_batch(n) {
            gemm::w_xt(pt, &self.weight, xn, n, d, ck, threads);
            return;
        }
        let split = self.small_batch_split(ws.shape.slots);
        let (arch, w) = (self.arch, &self.weight);
        for_blocks(
            &split,
            Rows(pt, n),
            |b, pt| {
                arch.dispatch(SmallForward {
                    w: &w[b.rows.start * d..b.rows.end * d],
                    xs: xn,
                    d,
                    n,
                    pt,
                })
            },
            |(), ()| (),
        );
    }

    /// Inference logits $S \max_k \cos$ (no margin), N×C.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f64>::from_weight(arcface::HeadConfig::new(2, 2).with_scale(10.0), &[1.0, 0.0, 0.0, 2.0]).unwrap();
    /// let z = h.logits(&[3.0, 4.0]).unwrap();
    /// assert!((z[0] - 6.0).abs() < 1e-12 && (z[1] - 8.0).abs() < 1e-12);
    /// ```
    pub fn logits(&self, features: &[T]) -> Result<Vec<T>> {
        let n = self.batch_size(features)?;
        let (mut ws, mut out) = self.logits_buffers(n)?;
        self.logits_into(features, &mut ws, &mut out)?;
        Ok(out)
    }

    /// An inference workspace and an N×C output, or the allocation error.
    fn logits_buffers(&self, n: usize) -> Result<(Workspace<T>, Vec<T>)> {
        let len = n.saturating_mul(self.cfg.num_classes);
        let ws = Workspace::try_inference(self, n)?;
        Ok((ws, try_filled(len, T::ZERO, "logits")?))
    }

    /// [`Self::logits`] into `out` (N×C), reusing `ws`.
    ///
    /// ```
    /// # use arcface::*;
    /// let h = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// let mut ws = Workspace::new(&h, 1);
    /// let mut out = [0.0f32; 3];
    /// h.logits_into(&[1.0, 2.0, 3.0, 4.0], &mut ws, &mut out).unwrap();
    /// ```
    pub fn logits_into(&self, features: &[T], ws: &mut Workspace<T>, out: &mut [T]) -> Result<()> {
        self.train_or_infer_logits(features, None, ws, out)
    }

    /// Training logits: as inference, with the margin applied at each
    /// sample's label (`head(feats, target)` upstream), N×C.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f64>::from_weight(arcface::HeadConfig::new(2, 2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
    /// let z = h.logits_train(&[1.0, 1.0], &[0]).unwrap();
    /// let c = 0.5f64.sqrt();
    /// assert!((z[0] - 64.0 * (c.acos() + 0.5).cos()).abs() < 1e-9);
    /// assert!((z[1] - 64.0 * c).abs() < 1e-9);
    /// ```
    pub fn logits_train(&self, features: &[T], labels: &[i64]) -> Result<Vec<T>> {
        let n = self.batch_size(features)?;
        let (mut ws, mut out) = self.logits_buffers(n)?;
        self.train_or_infer_logits(features, Some(labels), &mut ws, &mut out)?;
        Ok(out)
    }

    fn train_or_infer_logits(
        &self,
        features: &[T],
        labels: Option<&[i64]>,
        ws: &mut Workspace<T>,
        out: &mut [T],
    ) -> Result<()> {
        self.workspace_for(ws)?;
        let n = self.batch_size(features)?;
        let c = self.cfg.num_classes;
        if let Some(l) = labels {
            if l.len() != n {
                return Err(Error::Shape {
                    what: "labels",
                    expected: n,
                    got: l.len(),
                });
            }
            self.check_labels(l)?;
        }
        if out.len() != n * c {
            return Err(Error::Shape {
                what: "out",
                expected: n * c,
                got: out.len(),
            });
        }
        self.normalize_features(features, ws, n)?;
        self.products(ws, n);
        self.class_pass(
            ws,
            n,
            match labels {
                Some(l) => Mode::Train(l),
                None => Mode::Infer,
            },
        );
        self.transpose_logits(ws, n, out);
        Ok(())
    }

    /// The class-major logits (row c·K of the products, N long) to
    /// sample-major `out` (N×C), in tiles.
    fn transpose_logits(&self, ws: &Workspace<T>, n: usize, out: &mut [T]) {
        let (c, k, _, _) = self.dims();
        const TILE: usize = 32;
        for c0 in (0..c).step_by(TILE) {
            for i0 in (0..n).step_by(TILE) {
                for cl in c0..(c0 + TILE).min(c) {
                    let row = &ws.products[cl * k * n..cl * k * n + n];
                    for i in i0..(i0 + TILE).min(n) {
                        out[i * c + cl] = row[i];
                    }
                }
            }
        }
    }

    /// `predict`: softmax scores of the inference logits and the arg-max
    /// label (lowest class on ties). Retired classes score exactly 0 and are
    /// never the label.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::from_weight(arcface::HeadConfig::new(2, 2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
    /// let p = h.predict(&[1.0, 1.0]).unwrap();
    /// assert_eq!(p.labels, vec![0]); // a tie goes to the lower class
    /// assert!((p.scores[0] - 0.5).abs() < 1e-6);
    /// ```
    pub fn predict(&self, features: &[T]) -> Result<Prediction<T>> {
        let scores = self.logits(features)?;
        Ok(softmax_scores(
            self.arch,
            scores,
            self.cfg.num_classes,
            self.retired_mask(),
            self.retired(),
        ))
    }
}

/// `predict` from inference logits `scores` (N×C, replaced by their softmax):
/// the arg-max label of each row among the active classes (lowest on
/// ties), retired classes (`retired`, flags per class; `list`, ascending)
/// scoring exactly 0.
pub(crate) fn softmax_scores<T: Real>(
    arch: pulp::Arch,
    mut scores: Vec<T>,
    c: usize,
    retired: Option<&[bool]>,
    list: Vec<usize>,
) -> Prediction<T> {
    let mut labels = Vec::with_capacity(scores.len() / c.max(1));
    // the first active class (one always is)
    let first = retired.map_or(0, |r| r.iter().position(|&x| !x).unwrap_or(0));
    for row in scores.chunks_exact_mut(c) {
        let mut best = first;
        for j in first + 1..c {
            if row[j] > row[best] {
                best = j;
            }
        }
        labels.push(best);
        let m = arch.dispatch(RowMax { x: row });
        let mut sum = arch.dispatch(ExpShiftSum { x: row, shift: m });
        if let Some(r) = retired {
            // exp(−∞) is clamped, not 0: take those terms back out
            for (v, _) in row.iter_mut().zip(r).filter(|(_, &x)| x) {
                sum -= *v;
                *v = T::ZERO;
            }
        }
        let inv = T::ONE / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
    Prediction {
        scores,
        labels,
        num_classes: c,
        retired: list,
    }
}
