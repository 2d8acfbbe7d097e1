//! The head: weights, margins, inference, and the fused training step.

use crate::aligned::AVec;
use crate::config::{HeadConfig, Reduction};
use crate::error::{Error, Result};
use crate::gemm;
use crate::kernels::{
    small_backward_scratch, DivRows, ExpShiftSum, ProjectRows, RowMax, RowSumSq, SmallBackward,
    SmallForward,
};
use crate::margin::{MarginConstants, MarginT};
use crate::margins_io::AdaptiveMargins;
use crate::real::Real;
use rayon::prelude::*;

#[path = "pass.rs"]
mod pass;

/// The normalisation epsilon of `F.normalize`: $\hat v = v / \max(\lVert v\rVert, 10^{-12})$.
///
/// ```
/// assert_eq!(arcface::NORM_EPS, 1e-12);
/// ```
pub const NORM_EPS: f64 = 1e-12;

/// Batches of at most this many samples take the fused single-pass backward
/// (memory-bound: W is streamed once); larger ones use three faer products.
///
/// ```
/// assert_eq!(arcface::SMALL_BATCH, 16);
/// ```
pub const SMALL_BATCH: usize = 16;

/// The small-batch path streams W on one thread below this many bytes of
/// W: one core already draws most of the memory bandwidth there.
const SMALL_PAR_BYTES: usize = 4 << 20;

/// Row passes over fewer elements than this stay on one thread.
const PAR_MIN_ELEMS: usize = 1 << 17;

/// How many threads the head may use.
///
/// ```
/// use arcface::Threads;
/// assert_eq!(Threads::default(), Threads::Rayon);
/// assert_eq!(Threads::Sequential.count(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threads {
    /// Everything on the calling thread.
    Sequential,
    /// The current rayon pool (`rayon::current_num_threads()`); small
    /// problems still run on one thread, where that is faster.
    #[default]
    Rayon,
}

impl Threads {
    /// The number of threads this setting stands for here and now.
    ///
    /// ```
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// assert_eq!(pool.install(|| arcface::Threads::Rayon.count()), 2);
    /// ```
    pub fn count(self) -> usize {
        match self {
            Threads::Sequential => 1,
            Threads::Rayon => rayon::current_num_threads().max(1),
        }
    }
}

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

/// Reusable buffers for steps of up to `capacity` samples; once it exists a
/// step allocates nothing. It also holds the results of the last step.
///
/// Size, in elements: the products $N \cdot CK$ (reused as the gradient), the
/// weight gradient $CK \cdot D$ ([`Workspace::new`] only), $\hat X$ and $\partial X$
/// ($2ND$), per-thread partial sums of $\partial X$ ($t \cdot N D$) and softmax
/// state ($4tN$), for batches of up to 16 per-thread scratch of the fused
/// backward ($t N D$), a dozen per-sample vectors, and for $K > 1$ the
/// arg-max sub-centres ($C N$): $N \cdot CK + O((N + CK) D)$ beyond the weights.
///
/// ```
/// use arcface::{ArcFaceHead, HeadConfig, Workspace};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
/// let ws = Workspace::new(&head, 8);
/// assert_eq!(ws.capacity(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct Workspace<T> {
    cap: usize,
    /// Samples of the last loss evaluation.
    n: usize,
    /// Samples of the last gradient computation.
    grad_n: usize,
    d: usize,
    c: usize,
    ck: usize,
    xn: AVec<T>,
    inv_x: Vec<T>,
    /// 1 where ‖x_i‖ > eps, else 0 (the normalisation's projection switch).
    xproj: Vec<T>,
    prod: AVec<T>,
    grad_features: AVec<T>,
    grad_weight: AVec<T>,
    sample_loss: Vec<T>,
    /// Per-thread ∂X̂ accumulators of the small-batch backward.
    dx_acc: AVec<T>,
    /// Per-thread scratch of the small-batch backward.
    small_scr: AVec<T>,
    /// Per-thread partial ∂X̂ of the product-based backward.
    dx_part: AVec<T>,
    slots: usize,
    /// Arg-max sub-centre of every class and sample (K > 1), C×N.
    kidx: Vec<T>,
    /// Per-thread partial maxima / sums of the class pass, 2N each.
    partial: Vec<T>,
    /// Per-thread scratch rows of the class pass, 2N each.
    scratch: Vec<T>,
    /// Per-sample state of the class pass.
    m: Vec<T>,
    s: Vec<T>,
    gap: Vec<T>,
    zt: Vec<T>,
    dm: Vec<T>,
    pc: Vec<T>,
    q: Vec<T>,
    gt: Vec<T>,
    /// The samples of each class: offsets (C+1), cursor (C), list (N).
    cls_start: Vec<u32>,
    cls_cursor: Vec<u32>,
    cls_list: Vec<u32>,
    k: usize,
}

impl<T: Real> Workspace<T> {
    /// Buffers for `head` and batches of up to `capacity` samples.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(10, 16), 0).unwrap();
    /// let ws = Workspace::new(&head, 32);
    /// assert_eq!(ws.grad_weight().len(), 10 * 16);
    /// ```
    pub fn new(head: &ArcFaceHead<T>, capacity: usize) -> Self {
        Self::build(head, capacity, true)
    }

    /// Buffers for inference only (`logits_into`, `loss`): no (C·K)×D
    /// gradient buffer. A training step on it allocates that buffer once.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(1000, 64), 0).unwrap();
    /// let mut ws = Workspace::inference(&head, 1);
    /// let mut out = vec![0.0f32; 1000];
    /// head.logits_into(&[0.5; 64], &mut ws, &mut out).unwrap();
    /// assert!(ws.grad_weight().is_empty());
    /// ```
    pub fn inference(head: &ArcFaceHead<T>, capacity: usize) -> Self {
        Self::build(head, capacity, false)
    }

    fn build(head: &ArcFaceHead<T>, capacity: usize, grads: bool) -> Self {
        let (c, k, d) = (
            head.cfg.num_classes,
            head.cfg.num_subcenters,
            head.cfg.in_channels,
        );
        let mut ws = Self {
            cap: 0,
            n: 0,
            grad_n: 0,
            d,
            c,
            ck: c * k,
            xn: AVec::new(),
            inv_x: Vec::new(),
            xproj: Vec::new(),
            prod: AVec::new(),
            grad_features: AVec::new(),
            grad_weight: if grads {
                AVec::filled(c * k * d, T::ZERO)
            } else {
                AVec::new()
            },
            sample_loss: Vec::new(),
            dx_acc: AVec::new(),
            small_scr: AVec::new(),
            dx_part: AVec::new(),
            slots: 0,
            kidx: Vec::new(),
            partial: Vec::new(),
            scratch: Vec::new(),
            m: Vec::new(),
            s: Vec::new(),
            gap: Vec::new(),
            zt: Vec::new(),
            dm: Vec::new(),
            pc: Vec::new(),
            q: Vec::new(),
            gt: Vec::new(),
            cls_start: vec![0; c + 1],
            cls_cursor: vec![0; c],
            cls_list: Vec::new(),
            k,
        };
        ws.reserve(capacity.max(1), head.threads.count());
        ws
    }

    /// Forgets the last step's results, after an error that had already
    /// written some of them: no per-sample losses, no feature gradients, zero
    /// weight gradients.
    fn clear_results(&mut self) {
        self.n = 0;
        self.grad_n = 0;
        self.grad_weight.fill(T::ZERO);
    }

    /// The largest batch this workspace holds without growing.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
    /// assert_eq!(Workspace::new(&head, 5).capacity(), 5);
    /// ```
    pub fn capacity(&self) -> usize {
        self.cap
    }

    fn reserve(&mut self, n: usize, threads: usize) {
        if n > self.cap {
            self.cap = n;
            self.xn.resize(n * self.d, T::ZERO);
            self.inv_x.resize(n, T::ZERO);
            self.xproj.resize(n, T::ZERO);
            self.prod.resize(n * self.ck, T::ZERO);
            self.grad_features.resize(n * self.d, T::ZERO);
            self.sample_loss.resize(n, T::ZERO);
            for v in [
                &mut self.m,
                &mut self.s,
                &mut self.gap,
                &mut self.zt,
                &mut self.dm,
                &mut self.pc,
                &mut self.q,
                &mut self.gt,
            ] {
                v.resize(n, T::ZERO);
            }
            self.cls_list.resize(n, 0);
        }
        self.slots = self.slots.max(threads.clamp(1, 256));
        let per_slot = self.slots * 2 * self.cap;
        if per_slot > self.partial.len() {
            self.partial.resize(per_slot, T::ZERO);
            self.scratch.resize(per_slot, T::ZERO);
        }
        let kid = if self.k > 1 {
            self.c * self.cap
        } else {
            self.slots
        };
        if kid > self.kidx.len() {
            self.kidx.resize(kid, T::ZERO);
        }
        let acc = self.slots * self.cap.min(SMALL_BATCH) * self.d;
        if acc > self.dx_acc.len() {
            self.dx_acc.resize(acc, T::ZERO);
        }
        let scr = self.slots * small_backward_scratch(self.cap.min(SMALL_BATCH), self.d);
        if scr > self.small_scr.len() {
            self.small_scr.resize(scr, T::ZERO);
        }
        let part = self.slots * self.cap * self.d;
        if part > self.dx_part.len() {
            self.dx_part.resize(part, T::ZERO);
        }
    }

    fn fits(&self, head: &ArcFaceHead<T>) -> bool {
        self.d == head.cfg.in_channels
            && self.c == head.cfg.num_classes
            && self.ck == head.cfg.num_classes * head.cfg.num_subcenters
    }

    /// $\partial L / \partial x$ of the last [`ArcFaceHead::forward_backward`], N×D row-major.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(2, 3), 1).unwrap();
    /// let mut ws = Workspace::new(&head, 1);
    /// head.forward_backward(&Batch::new(&[1.0, 2.0, 3.0], &[1]), &mut ws).unwrap();
    /// assert_eq!(ws.grad_features().len(), 3);
    /// ```
    pub fn grad_features(&self) -> &[T] {
        &self.grad_features[..self.grad_n * self.d]
    }

    /// $\partial L / \partial W$ of the last [`ArcFaceHead::forward_backward`], (C·K)×D row-major.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(2, 3), 1).unwrap();
    /// let mut ws = Workspace::new(&head, 1);
    /// head.forward_backward(&Batch::new(&[1.0, 2.0, 3.0], &[1]), &mut ws).unwrap();
    /// assert_eq!(ws.grad_weight().len(), 6);
    /// ```
    pub fn grad_weight(&self) -> &[T] {
        &self.grad_weight
    }

    /// Per-sample losses $L_i = w_{loss}\, s_i\, \ell_i$ of the last step
    /// (upstream's result for `reduction='none'`).
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(2, 3), 1).unwrap();
    /// let mut ws = Workspace::new(&head, 2);
    /// let loss = head.loss(&Batch::new(&[1.0, 2.0, 3.0, 0.0, 1.0, 0.0], &[1, 0]), &mut ws).unwrap();
    /// let l = ws.sample_losses();
    /// assert!((loss - (l[0] + l[1]) / 2.0).abs() < 1e-12);
    /// ```
    pub fn sample_losses(&self) -> &[T] {
        &self.sample_loss[..self.n]
    }
}

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
}

impl<T: Real> Prediction<T> {
    /// For each sample, the `k` best `(class, score)` pairs, best first, lower
    /// class first among equal scores.
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
                let mut idx: Vec<usize> = (0..row.len()).collect();
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

/// Which target row a sample uses in the loss.
struct LossPlan<T> {
    /// `loss_weight` as T.
    lw: T,
    /// λ without the sample weight: `lw / N` (mean) or `lw`.
    lambda: T,
    /// Effective smoothing ε, 0 without smoothing.
    eps: T,
    smooth: bool,
}

/// mmpretrain's `ArcFaceClsHead`: weights (C·K)×D, margins, scale and loss,
/// with inference, the training forward and the analytic backward.
///
/// The step (see the crate docs for the maths) is three matrix products,
/// $P = \hat X W^\top$, $\partial\hat X = G' W$ and $G'^\top \hat X$, plus one
/// fused pass per row that takes the sub-centre maximum, applies the margin
/// in the target column, and forms the softmax cross-entropy gradient. The
/// weight norms are folded into the products' scaling: no normalised copy of
/// $W$ is made.
///
/// ```
/// use arcface::{ArcFaceHead, Batch, HeadConfig, Workspace};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 8).with_subcenters(2), 42).unwrap();
/// let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
/// let labels = [3, 1];
/// let mut ws = Workspace::new(&head, 2);
/// let loss = head.forward_backward(&Batch::new(&x, &labels), &mut ws).unwrap();
/// assert!(loss.is_finite());
/// assert_eq!(ws.grad_weight().len(), 4 * 2 * 8);
/// ```
#[derive(Debug, Clone)]
pub struct ArcFaceHead<T: Real> {
    cfg: HeadConfig,
    margins: Vec<f64>,
    consts: Vec<MarginT<T>>,
    class_weight: Option<Vec<T>>,
    weight: AVec<T>,
    /// max(‖w_r‖, eps): cosines are products divided by it.
    norm: Vec<T>,
    /// 1 / max(‖w_r‖, eps): the gradient's column scaling.
    inv_norm: Vec<T>,
    /// 1 / ‖w_r‖ where ‖w_r‖ > eps, else 0: the projection factor.
    proj: Vec<T>,
    /// First weight row holding a non-finite value, if any.
    bad_row: Option<Error>,
    arch: pulp::Arch,
    threads: Threads,
}

/// $\max(\lVert v\rVert, \epsilon)$, and whether $\lVert v\rVert > \epsilon$, from the
/// row's sum of squares `ss`, overflow-safe; `Err(col)` names a non-finite entry.
fn clamped_norm<T: Real>(ss: T, v: &[T]) -> core::result::Result<(T, bool), NormError> {
    let norm = if ss.is_finite_() {
        ss.sqrt_()
    } else {
        if let Some(col) = v.iter().position(|x| !x.is_finite_()) {
            return Err(NormError::NonFinite(col));
        }
        // overflow of the squares: scale by the largest magnitude
        let amax = v
            .iter()
            .fold(T::ZERO, |m, x| if x.abs_() > m { x.abs_() } else { m });
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

/// Why a row has no usable norm.
enum NormError {
    /// A NaN or infinity at this column.
    NonFinite(usize),
    /// Finite entries whose norm exceeds the working precision.
    Overflow,
}

impl NormError {
    fn into_error(self, what: &'static str, row: usize) -> Error {
        match self {
            NormError::NonFinite(col) => Error::NonFinite { what, row, col },
            NormError::Overflow => Error::Overflow { what, row },
        }
    }
}

impl<T: Real> ArcFaceHead<T> {
    /// A head with weights drawn like `nn.Linear`'s default init, uniform in
    /// $[-1/\sqrt D, 1/\sqrt D)$, from `seed` (the same seed gives the same
    /// weights on every platform).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(10, 64), 7).unwrap();
    /// let bound = 1.0 / 8.0;
    /// assert!(h.weight().iter().all(|w| w.abs() <= bound));
    /// ```
    pub fn new(cfg: HeadConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let n = cfg.num_classes * cfg.num_subcenters * cfg.in_channels;
        let bound = 1.0 / (cfg.in_channels as f64).sqrt();
        let mut rng = crate::rng::SplitMix64::new(seed);
        let w: Vec<T> = (0..n)
            .map(|_| {
                let u = rng.next_f64();
                T::from_f64((2.0 * u - 1.0) * bound)
            })
            .collect();
        Self::build(cfg, w)
    }

    /// A head with the given weights ((C·K)×D, row `c·K + k`), for example
    /// `head.norm_product.weight` of a PyTorch checkpoint.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f64>::from_weight(arcface::HeadConfig::new(1, 2), &[3.0, 4.0]).unwrap();
    /// assert_eq!(h.weight(), &[3.0, 4.0]);
    /// ```
    pub fn from_weight(cfg: HeadConfig, weight: &[T]) -> Result<Self> {
        cfg.validate()?;
        // the weight's length bounds every allocation of size num_classes
        let want = cfg.num_classes * cfg.num_subcenters * cfg.in_channels;
        if weight.len() != want {
            return Err(Error::Shape {
                what: "weight",
                expected: want,
                got: weight.len(),
            });
        }
        Self::build(cfg, weight.to_vec())
    }

    fn build(cfg: HeadConfig, weight: Vec<T>) -> Result<Self> {
        let rows = cfg.num_classes * cfg.num_subcenters;
        let margins = cfg.margins.expand(cfg.num_classes)?;
        let mut head = Self {
            consts: Vec::new(),
            class_weight: cfg
                .loss
                .class_weight
                .as_ref()
                .map(|w| w.iter().map(|&v| T::from_f64(v)).collect()),
            margins: Vec::new(),
            weight: AVec::new(),
            norm: vec![T::ONE; rows],
            inv_norm: vec![T::ONE; rows],
            proj: vec![T::ZERO; rows],
            bad_row: None,
            arch: pulp::Arch::new(),
            threads: Threads::default(),
            cfg,
        };
        head.check_margins_fit(&margins)?;
        head.check_loss_fits()?;
        head.install_margins(margins);
        head.set_weight(&weight)?;
        Ok(head)
    }

    /// The configuration (margins reflect the latest [`Self::set_margins`]).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(4, 8), 0).unwrap();
    /// assert_eq!(h.config().num_classes, 4);
    /// ```
    pub fn config(&self) -> &HeadConfig {
        &self.cfg
    }

    /// Sets the thread policy.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, Threads};
    /// let h = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap().with_threads(Threads::Sequential);
    /// assert_eq!(h.threads(), Threads::Sequential);
    /// ```
    pub fn with_threads(mut self, t: Threads) -> Self {
        self.threads = t;
        self
    }

    /// The thread policy.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(4, 8), 0).unwrap();
    /// assert_eq!(h.threads(), arcface::Threads::Rayon);
    /// ```
    pub fn threads(&self) -> Threads {
        self.threads
    }

    /// The SIMD instruction set the kernels dispatch to (`"avx512"`,
    /// `"avx2"`, `"neon"`, `"scalar"`).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    /// assert!(["avx512", "avx2", "neon", "scalar"].contains(&h.simd_level()));
    /// ```
    pub fn simd_level(&self) -> &'static str {
        crate::simd_level()
    }

    /// The weights, (C·K)×D row-major.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(4, 8).with_subcenters(2), 0).unwrap();
    /// assert_eq!(h.weight().len(), 4 * 2 * 8);
    /// ```
    pub fn weight(&self) -> &[T] {
        &self.weight
    }

    /// Replaces the weights. Non-finite values or a wrong length are errors
    /// and leave the head unchanged.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(1, 2), 0).unwrap();
    /// assert!(h.set_weight(&[f32::NAN, 0.0]).is_err());
    /// h.set_weight(&[0.0, 2.0]).unwrap();
    /// ```
    pub fn set_weight(&mut self, w: &[T]) -> Result<()> {
        let rows = self.cfg.num_classes * self.cfg.num_subcenters;
        let d = self.cfg.in_channels;
        if w.len() != rows * d {
            return Err(Error::Shape {
                what: "weight",
                expected: rows * d,
                got: w.len(),
            });
        }
        for (r, row) in w.chunks_exact(d).enumerate() {
            let ss = self.arch.dispatch(crate::kernels::SumSq { x: row });
            clamped_norm(ss, row).map_err(|e| e.into_error("weight", r))?;
        }
        self.weight.assign(w);
        self.refresh_norms();
        Ok(())
    }

    /// Changes the weights in place (an optimiser step, say) and refreshes
    /// the cached norms. If `f` leaves a NaN or infinity, the error names it
    /// and every later call fails with it until the weights are set again.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(1, 2), 0).unwrap();
    /// h.update_weight(|w| w.iter_mut().for_each(|v| *v *= 2.0)).unwrap();
    /// ```
    pub fn update_weight(&mut self, f: impl FnOnce(&mut [T])) -> Result<()> {
        f(&mut self.weight);
        self.refresh_norms();
        self.check_weight()
    }

    /// One plain SGD step, `W ← W − lr · ∂L/∂W`, refusing (and changing
    /// nothing) if the result would not be finite.
    ///
    /// ```
    /// # use arcface::*;
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// let mut ws = Workspace::new(&head, 1);
    /// head.forward_backward(&Batch::new(&[1.0, 0.5, 0.0, 0.0], &[2]), &mut ws).unwrap();
    /// head.sgd_step(ws.grad_weight(), 0.1).unwrap();
    /// ```
    pub fn sgd_step(&mut self, grad: &[T], lr: T) -> Result<()> {
        let d = self.cfg.in_channels;
        if grad.len() != self.weight.len() {
            return Err(Error::Shape {
                what: "grad",
                expected: self.weight.len(),
                got: grad.len(),
            });
        }
        // check every updated row (values and norm) before changing anything
        for (r, (w, g)) in self
            .weight
            .chunks_exact(d)
            .zip(grad.chunks_exact(d))
            .enumerate()
        {
            let mut ss = T::ZERO;
            for (col, (w, g)) in w.iter().zip(g).enumerate() {
                let v = *w - lr * *g;
                if !v.is_finite_() {
                    return Err(Error::NonFinite {
                        what: "weight",
                        row: r,
                        col,
                    });
                }
                ss += v * v;
            }
            if !ss.is_finite_() {
                // the squares overflow: measure the norm with scaling
                let amax = w.iter().zip(g).fold(T::ZERO, |m, (w, g)| {
                    let v = (*w - lr * *g).abs_();
                    if v > m {
                        v
                    } else {
                        m
                    }
                });
                let s = w.iter().zip(g).fold(T::ZERO, |a, (w, g)| {
                    let y = (*w - lr * *g) / amax;
                    a + y * y
                });
                if !(amax * s.sqrt_()).is_finite_() {
                    return Err(Error::Overflow {
                        what: "weight",
                        row: r,
                    });
                }
            }
        }
        for (w, g) in self.weight.iter_mut().zip(grad) {
            *w -= lr * *g;
        }
        self.refresh_norms();
        self.check_weight()
    }

    fn check_weight(&self) -> Result<()> {
        match &self.bad_row {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn refresh_norms(&mut self) {
        let d = self.cfg.in_channels;
        self.bad_row = None;
        // sums of squares first (one dispatch), into the norm slots
        self.arch.dispatch(RowSumSq {
            x: &self.weight,
            d,
            out: &mut self.norm,
        });
        for (r, row) in self.weight.chunks_exact(d).enumerate() {
            match clamped_norm(self.norm[r], row) {
                Ok((norm, above)) => {
                    let inv = T::ONE / norm;
                    self.norm[r] = norm;
                    self.inv_norm[r] = inv;
                    self.proj[r] = if above { inv } else { T::ZERO };
                }
                Err(e) => {
                    if self.bad_row.is_none() {
                        self.bad_row = Some(e.into_error("weight", r));
                    }
                }
            }
        }
    }

    /// The per-class margins in use ($m_c$, f64 as given).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(3, 8), 0).unwrap();
    /// assert_eq!(h.margins(), &[0.5; 3]);
    /// ```
    pub fn margins(&self) -> &[f64] {
        &self.margins
    }

    /// The derived constants of class `c` (D8: $t = -\cos m$, $s = m\sin m$ in f64).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    /// assert_eq!(h.margin_constants(1).margin, 0.5);
    /// ```
    pub fn margin_constants(&self, c: usize) -> MarginConstants {
        MarginConstants::new(self.margins[c])
    }

    /// `set_margins`: one margin per class, finite (D7), any sign and size.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    /// h.set_margins(&[0.2, 0.4]).unwrap();
    /// assert!(h.set_margins(&[0.2]).is_err());
    /// assert!(h.set_margins(&[0.2, f64::NAN]).is_err());
    /// ```
    pub fn set_margins(&mut self, margins: &[f64]) -> Result<()> {
        crate::config::validate_margins(margins, self.cfg.num_classes)?;
        self.check_margins_fit(margins)?;
        self.install_margins(margins.to_vec());
        Ok(())
    }

    /// `set_margins(m)` with one number for every class.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    /// h.set_uniform_margin(0.3).unwrap();
    /// assert_eq!(h.margins(), &[0.3, 0.3]);
    /// ```
    pub fn set_uniform_margin(&mut self, m: f64) -> Result<()> {
        self.set_margins(&vec![m; self.cfg.num_classes])
    }

    /// Upstream's `SetAdaptiveMarginsHook`: margins from the class counts of
    /// the training labels (see [`AdaptiveMargins`]).
    ///
    /// ```
    /// use arcface::{AdaptiveMargins, ArcFaceHead, HeadConfig};
    /// let mut h = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 0).unwrap();
    /// h.set_adaptive_margins(&[0, 0, 0, 1, 2, 2], AdaptiveMargins::default()).unwrap();
    /// assert!(h.margins()[1] > h.margins()[0]);
    /// ```
    pub fn set_adaptive_margins(&mut self, labels: &[i64], params: AdaptiveMargins) -> Result<()> {
        let m = params.compute(labels, self.cfg.num_classes)?;
        self.set_margins(&m)
    }

    /// Logits must stay finite in T: |S|·(1 + |m sin m|) well inside T's range.
    fn check_margins_fit(&self, margins: &[f64]) -> Result<()> {
        let limit = T::MAX.to_f64() / 8.0;
        for (class, &m) in margins.iter().enumerate() {
            let k = MarginConstants::new(m);
            let s = self.cfg.scale.abs().max(1.0);
            if m.abs() > limit || s * (2.0 + k.sinm_m.abs()) > limit {
                return Err(crate::config::invalid(
                    "margins",
                    format!(
                        "of class {class} ({m}) times the scale overflows {}",
                        T::NAME
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The loss's weights must leave room in T: |loss_weight|, every class
    /// weight and their product with the scale stay well inside its range.
    fn check_loss_fits(&self) -> Result<()> {
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

    fn install_margins(&mut self, margins: Vec<f64>) {
        self.consts = margins
            .iter()
            .map(|&m| MarginT::from_f64(&MarginConstants::new(m)))
            .collect();
        self.cfg.margins = crate::config::Margins::PerClass(margins.clone());
        self.margins = margins;
    }

    fn dims(&self) -> (usize, usize, usize, usize) {
        let c = self.cfg.num_classes;
        let k = self.cfg.num_subcenters;
        (c, k, c * k, self.cfg.in_channels)
    }

    fn batch_size(&self, features: &[T]) -> Result<usize> {
        let d = self.cfg.in_channels;
        if features.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if !features.len().is_multiple_of(d) {
            return Err(Error::Shape {
                what: "features",
                expected: features.len().div_ceil(d) * d,
                got: features.len(),
            });
        }
        Ok(features.len() / d)
    }

    /// Validates features and writes x̂ and 1/‖x‖ into the workspace.
    fn normalize_features(&self, features: &[T], ws: &mut Workspace<T>, n: usize) -> Result<()> {
        let d = self.cfg.in_channels;
        ws.reserve(n, self.threads.count());
        self.arch.dispatch(RowSumSq {
            x: features,
            d,
            out: &mut ws.inv_x[..n],
        });
        // rows whose norm overflows T are normalised in two steps below
        let mut huge = false;
        for (i, row) in features.chunks_exact(d).enumerate() {
            let (norm, above) = match clamped_norm(ws.inv_x[i], row) {
                Ok(v) => v,
                Err(NormError::Overflow) => {
                    huge = true;
                    (T::from_f64(f64::INFINITY), true)
                }
                Err(e) => return Err(e.into_error("features", i)),
            };
            ws.inv_x[i] = norm;
            ws.xproj[i] = if above { T::ONE } else { T::ZERO };
        }
        self.arch.dispatch(DivRows {
            src: features,
            dst: &mut ws.xn[..n * d],
            d,
            k: &ws.inv_x[..n],
        });
        if huge {
            // x̂ = (x / max|x|) / ‖x / max|x|‖: finite, and 1/‖x‖ rounds to 0
            for (i, (src, dst)) in features
                .chunks_exact(d)
                .zip(ws.xn.chunks_exact_mut(d))
                .enumerate()
            {
                if ws.inv_x[i].is_finite_() {
                    continue;
                }
                let amax = src
                    .iter()
                    .fold(T::ZERO, |m, x| if x.abs_() > m { x.abs_() } else { m });
                let mut ss = T::ZERO;
                for (o, x) in dst.iter_mut().zip(src) {
                    *o = *x / amax;
                    ss += *o * *o;
                }
                let norm = ss.sqrt_();
                dst.iter_mut().for_each(|o| *o /= norm);
            }
        }
        for v in &mut ws.inv_x[..n] {
            *v = T::ONE / *v;
        }
        Ok(())
    }

    fn check_labels(&self, labels: &[i64]) -> Result<()> {
        crate::error::check_labels(labels, self.cfg.num_classes)
    }

    fn workspace_for(&self, ws: &Workspace<T>) -> Result<()> {
        if !ws.fits(self) {
            return Err(Error::InvalidConfig {
                field: "workspace",
                reason: format!(
                    "was made for C = {}, C·K = {}, D = {}; this head has C = {}, C·K = {}, D = {}",
                    ws.c,
                    ws.ck,
                    ws.d,
                    self.cfg.num_classes,
                    self.dims().2,
                    self.cfg.in_channels
                ),
            });
        }
        self.check_weight()
    }

    /// Products Pᵀ = W X̂ᵀ ((C·K)×N, class-major) into `ws.prod`.
    fn products(&self, ws: &mut Workspace<T>, n: usize) {
        let (_, _, ck, d) = self.dims();
        let t = self.threads.count();
        if n <= SMALL_BATCH {
            // stream W once, each row against every sample: no packing copy
            let slots = if t > 1 && ck * d * core::mem::size_of::<T>() >= SMALL_PAR_BYTES {
                t.min(ws.slots)
            } else {
                1
            };
            let rows_per = ck.div_ceil(slots);
            let (arch, xn, w) = (self.arch, &ws.xn[..n * d], &self.weight);
            let body = |chunk: usize, pt: &mut [T]| {
                let r0 = chunk * rows_per;
                let rows = pt.len() / n;
                arch.dispatch(SmallForward {
                    w: &w[r0 * d..(r0 + rows) * d],
                    xs: xn,
                    d,
                    n,
                    pt,
                });
            };
            let pt = &mut ws.prod[..ck * n];
            if slots > 1 {
                pt.par_chunks_mut(rows_per * n)
                    .enumerate()
                    .for_each(|(ch, p)| body(ch, p));
            } else {
                body(0, pt);
            }
            return;
        }
        gemm::w_xt(
            &mut ws.prod[..ck * n],
            &self.weight,
            &ws.xn[..n * d],
            n,
            d,
            ck,
            t,
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
        let mut ws = Workspace::inference(self, n);
        let mut out = vec![T::ZERO; n * self.cfg.num_classes];
        self.logits_into(features, &mut ws, &mut out)?;
        Ok(out)
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
        let mut ws = Workspace::inference(self, n);
        let mut out = vec![T::ZERO; n * self.cfg.num_classes];
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
                Some(l) => pass::Mode::Train(l),
                None => pass::Mode::Infer,
            },
        );
        // class-major rows c·K to sample-major logits, in tiles
        let k = self.cfg.num_subcenters;
        const TILE: usize = 32;
        for c0 in (0..c).step_by(TILE) {
            for i0 in (0..n).step_by(TILE) {
                for cl in c0..(c0 + TILE).min(c) {
                    let row = &ws.prod[cl * k * n..cl * k * n + n];
                    for i in i0..(i0 + TILE).min(n) {
                        out[i * c + cl] = row[i];
                    }
                }
            }
        }
        Ok(())
    }

    /// `predict`: softmax scores of the inference logits and the arg-max
    /// label (lowest class on ties).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::from_weight(arcface::HeadConfig::new(2, 2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
    /// let p = h.predict(&[1.0, 1.0]).unwrap();
    /// assert_eq!(p.labels, vec![0]); // a tie goes to the lower class
    /// assert!((p.scores[0] - 0.5).abs() < 1e-6);
    /// ```
    pub fn predict(&self, features: &[T]) -> Result<Prediction<T>> {
        let mut scores = self.logits(features)?;
        let c = self.cfg.num_classes;
        let mut labels = Vec::with_capacity(scores.len() / c);
        for row in scores.chunks_exact_mut(c) {
            let mut best = 0;
            for j in 1..c {
                if row[j] > row[best] {
                    best = j;
                }
            }
            labels.push(best);
            let m = self.arch.dispatch(RowMax { x: row });
            let sum = self.arch.dispatch(ExpShiftSum { x: row, shift: m });
            let inv = T::ONE / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
        Ok(Prediction {
            scores,
            labels,
            num_classes: c,
        })
    }

    fn validate_batch(&self, batch: &Batch<'_, T>) -> Result<usize> {
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
                if t.len() != n * c {
                    return Err(Error::Shape {
                        what: "soft_targets",
                        expected: n * c,
                        got: t.len(),
                    });
                }
                if let Some(p) = t.iter().position(|v| !v.is_finite_()) {
                    return Err(Error::NonFinite {
                        what: "soft_targets",
                        row: p / c,
                        col: p % c,
                    });
                }
            }
            None if self.cfg.loss.use_soft => return Err(Error::MissingSoftTargets),
            None => {}
        }
        if let Some(w) = batch.sample_weights {
            if w.len() != n {
                return Err(Error::Shape {
                    what: "sample_weights",
                    expected: n,
                    got: w.len(),
                });
            }
            if let Some(p) = w.iter().position(|v| !v.is_finite_()) {
                return Err(Error::NonFinite {
                    what: "sample_weights",
                    row: p,
                    col: 0,
                });
            }
        }
        Ok(n)
    }

    fn plan(&self, n: usize) -> LossPlan<T> {
        let l = &self.cfg.loss;
        let lw = T::from_f64(l.loss_weight);
        let lambda = match l.reduction {
            Reduction::Mean => T::from_f64(l.loss_weight / n as f64),
            Reduction::Sum | Reduction::None => lw,
        };
        let (eps, smooth) = match &l.label_smooth {
            Some(ls) => (T::from_f64(ls.effective_eps()), true),
            None => (T::ZERO, false),
        };
        LossPlan {
            lw,
            lambda,
            eps,
            smooth,
        }
    }

    /// The loss of a batch without gradients; the per-sample values are left
    /// in [`Workspace::sample_losses`]. Returns the mean (`Mean`), the sum
    /// (`Sum`), or the sum of the per-sample losses (`None`).
    ///
    /// ```
    /// # use arcface::*;
    /// let h = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 0).unwrap();
    /// let mut ws = Workspace::new(&h, 1);
    /// assert!(h.loss(&Batch::new(&[1.0, 0.0], &[2]), &mut ws).unwrap() > 0.0);
    /// ```
    pub fn loss(&self, batch: &Batch<'_, T>, ws: &mut Workspace<T>) -> Result<T> {
        self.step(batch, ws, false)
    }

    /// Loss and analytic gradients in one call (SPEC §6). Gradients go to
    /// [`Workspace::grad_features`] and [`Workspace::grad_weight`]; per-sample
    /// losses to [`Workspace::sample_losses`]. For `Reduction::None` the
    /// gradients are those of $\sum_i L_i$, which is also the value returned.
    ///
    /// With $z$ the training logits, $P = \operatorname{softmax}(z)$,
    /// $V_{ic} = w_c T_{ic}$, $a_i = \sum_c V_{ic}$ and $\lambda = w_{loss}/N$
    /// (mean) or $w_{loss}$:
    /// $$\frac{\partial L}{\partial z_{ic}} = \lambda s_i (P_{ic} a_i - V_{ic}),\qquad
    /// \frac{\partial L}{\partial \cos_{ic}} = S \frac{\partial L}{\partial z_{ic}} D_{ic}$$
    /// with $D$ the margin derivative at the target and 1 elsewhere; only the
    /// arg-max sub-centre receives it, and the normalisations' Jacobians
    /// $(I - \hat v \hat v^\top)/\lVert v \rVert$ map it back to $x$ and $W$.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(5, 3), 1).unwrap();
    /// let mut ws = Workspace::new(&head, 2);
    /// let x = [0.3, -0.2, 0.9, 0.1, 0.4, -0.7];
    /// let loss = head.forward_backward(&Batch::new(&x, &[4, 0]), &mut ws).unwrap();
    /// // gradient of a normalised input is orthogonal to it
    /// let g = ws.grad_features();
    /// let dot: f64 = x[..3].iter().zip(&g[..3]).map(|(a, b)| a * b).sum();
    /// assert!(dot.abs() < 1e-12 && loss > 0.0);
    /// ```
    pub fn forward_backward(&self, batch: &Batch<'_, T>, ws: &mut Workspace<T>) -> Result<T> {
        self.step(batch, ws, true)
    }

    fn step(&self, batch: &Batch<'_, T>, ws: &mut Workspace<T>, backward: bool) -> Result<T> {
        self.workspace_for(ws)?;
        let n = self.validate_batch(batch)?;
        self.normalize_features(batch.features, ws, n)?;
        let d = self.cfg.in_channels;
        let threads = self.threads.count();
        self.products(ws, n);
        let plan = self.plan(n);

        if backward && ws.grad_weight.len() != self.weight.len() {
            // an inference workspace's first training step
            ws.grad_weight.resize(self.weight.len(), T::ZERO);
        }
        self.class_pass(
            ws,
            n,
            pass::Mode::Loss {
                batch,
                plan: &plan,
                backward,
            },
        );
        ws.n = n;

        let total = ws.sample_loss[..n].iter().fold(T::ZERO, |a, &b| a + b);
        let value = match self.cfg.loss.reduction {
            Reduction::Mean => total / T::from_f64(n as f64),
            Reduction::Sum | Reduction::None => total,
        };
        if !value.is_finite_() {
            // finite inputs whose loss the working precision cannot hold;
            // the new losses are already in the workspace: leave no result
            ws.clear_results();
            return Err(Error::Overflow {
                what: "loss",
                row: 0,
            });
        }
        if !backward {
            return Ok(value);
        }

        let probe_w = if n <= SMALL_BATCH {
            self.backward_small(ws, n, threads)
        } else {
            self.backward_gemm(ws, n, threads)
        };
        // the normalisation Jacobian of each feature row
        let probe_x = self.arch.dispatch(ProjectRows {
            g: &mut ws.grad_features[..n * d],
            v: &ws.xn[..n * d],
            d,
            a: Some(&ws.inv_x[..n]),
            c: &ws.xproj[..n],
        });
        if probe_w != T::ZERO || probe_x != T::ZERO {
            // the gradients are half written: leave no result
            ws.clear_results();
            return Err(Error::Overflow {
                what: "gradient",
                row: 0,
            });
        }
        ws.grad_n = n;
        Ok(value)
    }

    /// Large batches: ∂L/∂x̂ = G'W and G'ᵀX̂ through faer, then the weight
    /// rows' normalisation Jacobian in one pass over W and ∂W.
    fn backward_gemm(&self, ws: &mut Workspace<T>, n: usize, threads: usize) -> T {
        let (_, _, ck, d) = self.dims();
        let gt = &ws.prod[..ck * n];
        let xn = &ws.xn[..n * d];
        let arch = self.arch;
        let (w, proj) = (&self.weight, &self.proj);
        let dx = |gf: &mut [T], part: &mut [T], t: usize| {
            gemm::gt_w(gf, gt, w, part, n, d, ck, t);
        };
        // ∂W = G'ᵀX̂, then each row's normalisation Jacobian
        let dw = |gw: &mut [T], t: usize| -> T {
            gemm::g_x(gw, gt, xn, n, d, ck, t);
            let slots = if t > 1 && ck * d >= PAR_MIN_ELEMS {
                t
            } else {
                1
            };
            let rows_per = ck.div_ceil(slots);
            let body = |ch: usize, g: &mut [T]| {
                let r0 = ch * rows_per;
                let rows = g.len() / d;
                arch.dispatch(ProjectRows {
                    g,
                    v: &w[r0 * d..(r0 + rows) * d],
                    d,
                    a: None,
                    c: &proj[r0..r0 + rows],
                })
            };
            if slots > 1 {
                gw.par_chunks_mut(rows_per * d)
                    .enumerate()
                    .map(|(ch, g)| body(ch, g))
                    .reduce(|| T::ZERO, |a, b| a + b)
            } else {
                body(0, gw)
            }
        };
        let (gf, part, gw) = (
            &mut ws.grad_features[..n * d],
            &mut ws.dx_part[..],
            &mut ws.grad_weight[..],
        );
        let flops = 2.0 * (n * d * ck) as f64;
        if threads > 1
            && flops >= gemm::OVERLAP_MIN_FLOPS
            && gemm::blocks::<T>(n, d, ck, threads) == 1
        {
            // too small to split a product across threads, big enough to pay
            // for waking one: the two backward products are independent, so
            // each gets a thread of its own (sequential products: the same
            // bits as on one thread)
            rayon::join(|| dx(gf, part, 1), || dw(gw, 1)).1
        } else {
            dx(gf, part, threads);
            dw(gw, threads)
        }
    }

    /// Small batches (N ≤ [`SMALL_BATCH`]) are bound by streaming W, so the
    /// whole backward is one pass over the weight rows: for row r, with
    /// $g_i = G'_{ir}$, $\partial W_r = \sum_i g_i \hat x_i$ projected against
    /// $w_r$, and $\partial \hat X_i \mathrel{+}= g_i w_r$ into per-thread
    /// accumulators summed in a fixed order (deterministic per thread count).
    /// W is read once and ∂W written once, instead of twice and three times.
    fn backward_small(&self, ws: &mut Workspace<T>, n: usize, threads: usize) -> T {
        let (_, _, ck, d) = self.dims();
        let slots = if threads > 1 && ck * d * core::mem::size_of::<T>() >= SMALL_PAR_BYTES {
            threads.min(ws.slots)
        } else {
            1
        };
        let rows_per = ck.div_ceil(slots);
        let arch = self.arch;
        let prod = &ws.prod[..n * ck];
        let xn = &ws.xn[..n * d];
        let (w, proj) = (&self.weight, &self.proj);
        let body = |chunk: usize, gw: &mut [T], acc: &mut [T], scr: &mut [T]| {
            acc.fill(T::ZERO);
            let r0 = chunk * rows_per;
            let rows = gw.len() / d;
            arch.dispatch(SmallBackward {
                w: &w[r0 * d..(r0 + rows) * d],
                proj: &proj[r0..r0 + rows],
                prod,
                r0,
                xs: xn,
                d,
                n,
                gw,
                acc,
                scr,
            })
        };
        let acc = &mut ws.dx_acc[..slots * n * d];
        let per = small_backward_scratch(n, d);
        let scr = &mut ws.small_scr[..slots * per];
        let probe = if slots > 1 {
            ws.grad_weight
                .par_chunks_mut(rows_per * d)
                .zip(acc.par_chunks_mut(n * d))
                .zip(scr.par_chunks_mut(per))
                .enumerate()
                .map(|(chunk, ((gw, a), sc))| body(chunk, gw, a, sc))
                .reduce(|| T::ZERO, |a, b| a + b)
        } else {
            body(0, &mut ws.grad_weight, &mut acc[..n * d], &mut scr[..per])
        };
        let gf = &mut ws.grad_features[..n * d];
        gf.copy_from_slice(&acc[..n * d]);
        for part in acc[n * d..].chunks_exact(n * d) {
            for (a, b) in gf.iter_mut().zip(part) {
                *a += *b;
            }
        }
        probe
    }
}
