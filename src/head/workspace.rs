//! [`Workspace`]: every buffer a step needs, grouped by the phase that
//! uses it, so that a step allocates nothing.
//!
//! Each group is a struct with named buffers and one `reserve` that sizes
//! them all: adding a buffer means adding a field and its size in that one
//! `reserve`.

use super::{ArcFaceHead, SMALL_BATCH};
use crate::aligned::AVec;
use crate::kernels::small_backward_scratch;
use crate::real::Real;

/// What the buffers are sized for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    /// Samples per step, at most.
    pub(super) cap: usize,
    /// Per-thread buffer slots.
    pub(super) slots: usize,
    /// D.
    pub(super) d: usize,
    /// C.
    pub(super) c: usize,
    /// K.
    pub(super) k: usize,
}

impl Shape {
    /// C·K, the weight rows.
    pub(super) fn ck(&self) -> usize {
        self.c * self.k
    }
}

/// Grows a `Vec` or an `AVec` to at least `len` elements (never shrinks),
/// filling with zeros.
macro_rules! grow {
    ($v:expr, $len:expr) => {{
        let len = $len;
        if len > $v.len() {
            $v.resize(len, Default::default());
        }
    }};
}

/// The last step's results.
#[derive(Debug, Clone, Default)]
pub(super) struct StepResults<T> {
    /// Samples of the last loss evaluation.
    pub(super) n: usize,
    /// Samples of the last gradient computation.
    pub(super) grad_n: usize,
    /// Per-sample losses, N.
    pub(super) sample_loss: Vec<T>,
    /// ∂L/∂x, N×D.
    pub(super) grad_features: AVec<T>,
    /// ∂L/∂W, (C·K)×D; empty in an inference workspace until a training
    /// step needs it.
    pub(super) grad_weight: AVec<T>,
}

impl<T: Real> StepResults<T> {
    fn reserve(&mut self, s: &Shape) {
        grow!(self.sample_loss, s.cap);
        grow!(self.grad_features, s.cap * s.d);
    }
}

/// The normalised features and what their normalisation's Jacobian needs.
#[derive(Debug, Clone, Default)]
pub(super) struct Features<T> {
    /// x̂, N×D.
    pub(super) unit: AVec<T>,
    /// 1/‖x_i‖ (0 where ‖x_i‖ overflows T), N.
    pub(super) inv_norm: Vec<T>,
    /// 1 where ‖x_i‖ > eps, else 0: the projection switch, N.
    pub(super) proj: Vec<T>,
}

impl<T: Real> Features<T> {
    fn reserve(&mut self, s: &Shape) {
        grow!(self.unit, s.cap * s.d);
        grow!(self.inv_norm, s.cap);
        grow!(self.proj, s.cap);
    }
}

/// Per-sample state of the class pass, N each.
#[derive(Debug, Clone, Default)]
pub(super) struct SampleState<T> {
    /// $m_i = \max_c z_{ic}$.
    pub(super) row_max: Vec<T>,
    /// $\sum_c e^{z_{ic} - m_i}$.
    pub(super) exp_sum: Vec<T>,
    /// $\sum_c V_{ic} (m_i - z_{ic})$ (soft and smoothed targets).
    pub(super) target_gap: Vec<T>,
    /// The target logit $S\phi'$ with the margin.
    pub(super) target_logit: Vec<T>,
    /// The margin derivative $d\phi'/d\cos$ at the target.
    pub(super) margin_grad: Vec<T>,
    /// $q_i a_i / \sum_c e$: turns $e^{z - m}$ into $q\,a\,P$.
    pub(super) prob_coef: Vec<T>,
    /// $q_i = S \lambda s_i$, the gradient's scale.
    pub(super) grad_scale: Vec<T>,
    /// The gradient at the target, before the weight norm.
    pub(super) target_grad: Vec<T>,
}

impl<T: Real> SampleState<T> {
    fn reserve(&mut self, s: &Shape) {
        for v in [
            &mut self.row_max,
            &mut self.exp_sum,
            &mut self.target_gap,
            &mut self.target_logit,
            &mut self.margin_grad,
            &mut self.prob_coef,
            &mut self.grad_scale,
            &mut self.target_grad,
        ] {
            grow!(v, s.cap);
        }
    }
}

/// The samples of each class (a counting sort of the labels).
#[derive(Debug, Clone, Default)]
pub(super) struct ClassIndex {
    /// Offsets into `samples`, C + 1.
    pub(super) start: Vec<u32>,
    /// Fill cursor while sorting, C.
    pub(super) cursor: Vec<u32>,
    /// Sample indices grouped by class, N.
    pub(super) samples: Vec<u32>,
}

impl ClassIndex {
    fn reserve(&mut self, s: &Shape) {
        grow!(self.start, s.c + 1);
        grow!(self.cursor, s.c);
        grow!(self.samples, s.cap);
    }
}

/// Buffers of the class pass.
#[derive(Debug, Clone, Default)]
pub(super) struct ClassPassScratch<T> {
    /// Arg-max sub-centre of every class and sample (K > 1 only), C×N.
    ///
    /// Stored as `T`, not as an integer: the kernels that write and read
    /// it compare and select it lane by lane alongside the cosines, with
    /// the same lane width and mask type. It holds small integers (below
    /// K), exact in either type.
    pub(super) subcentre: Vec<T>,
    /// Per block: partial maxima, or partial sums and target gaps, 2N.
    pub(super) partials: Vec<T>,
    /// Per block: scratch rows, 2N.
    pub(super) rows: Vec<T>,
    pub(super) by_class: ClassIndex,
    pub(super) samples: SampleState<T>,
}

impl<T: Real> ClassPassScratch<T> {
    fn reserve(&mut self, s: &Shape) {
        grow!(self.subcentre, if s.k > 1 { s.c * s.cap } else { 0 });
        grow!(self.partials, s.slots * 2 * s.cap);
        grow!(self.rows, s.slots * 2 * s.cap);
        self.by_class.reserve(s);
        self.samples.reserve(s);
    }
}

/// Per-thread buffers of the two backward strategies.
#[derive(Debug, Clone, Default)]
pub(super) struct BackwardScratch<T> {
    /// Small batches: per-thread ∂X̂ accumulators, N×D each.
    pub(super) small_acc: AVec<T>,
    /// Small batches: per-thread scratch of the fused backward.
    pub(super) small_rows: AVec<T>,
    /// Product backward: per-thread partial ∂X̂, N×D each.
    pub(super) dx_partial: AVec<T>,
}

impl<T: Real> BackwardScratch<T> {
    fn reserve(&mut self, s: &Shape) {
        let small = s.cap.min(SMALL_BATCH);
        grow!(self.small_acc, s.slots * small * s.d);
        grow!(
            self.small_rows,
            s.slots * small_backward_scratch(small, s.d)
        );
        grow!(self.dx_partial, s.slots * s.cap * s.d);
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
    pub(super) shape: Shape,
    pub(super) results: StepResults<T>,
    pub(super) features: Features<T>,
    /// The products Pᵀ, (C·K)×N, overwritten by the gradient G'ᵀ.
    pub(super) products: AVec<T>,
    pub(super) class_pass: ClassPassScratch<T>,
    pub(super) backward: BackwardScratch<T>,
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
        let (c, k, ck, d) = head.dims();
        let mut ws = Self {
            shape: Shape {
                cap: 0,
                slots: 0,
                d,
                c,
                k,
            },
            results: StepResults::default(),
            features: Features::default(),
            products: AVec::new(),
            class_pass: ClassPassScratch::default(),
            backward: BackwardScratch::default(),
        };
        if grads {
            ws.results.grad_weight = AVec::filled(ck * d, T::ZERO);
        }
        ws.reserve(capacity.max(1), head.threads().count());
        ws
    }

    /// Grows the buffers for steps of `n` samples on `threads` threads.
    pub(super) fn reserve(&mut self, n: usize, threads: usize) {
        let s = &mut self.shape;
        s.cap = s.cap.max(n);
        s.slots = s.slots.max(threads.clamp(1, 256));
        let s = *s;
        self.results.reserve(&s);
        self.features.reserve(&s);
        grow!(self.products, s.cap * s.ck());
        self.class_pass.reserve(&s);
        self.backward.reserve(&s);
    }

    /// Forgets the last step's results, after an error that had already
    /// written some of them: no per-sample losses, no feature gradients, zero
    /// weight gradients.
    pub(super) fn clear_results(&mut self) {
        self.results.n = 0;
        self.results.grad_n = 0;
        self.results.grad_weight.fill(T::ZERO);
    }

    /// The largest batch this workspace holds without growing.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
    /// assert_eq!(Workspace::new(&head, 5).capacity(), 5);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shape.cap
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
        &self.results.grad_features[..self.results.grad_n * self.shape.d]
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
        &self.results.grad_weight
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
        &self.results.sample_loss[..self.results.n]
    }
}
