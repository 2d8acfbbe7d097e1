//! [`Workspace`]: every buffer a step needs, grouped by the phase that
//! uses it, so that a step allocates nothing.
//!
//! Each group is a struct with named buffers and one `reserve` that sizes
//! them all: adding a buffer means adding a field and its size in that one
//! `reserve`.

use super::{ArcFaceHead, SMALL_BATCH};
use crate::aligned::AVec;
use crate::config::HeadConfig;
use crate::error::Result;
use crate::kernels::small_backward_scratch;
use crate::memory::{Allocate, Count, Sizer};
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

    /// The dimensions widened, so that products of them cannot overflow
    /// before the sizer checks them.
    fn wide(&self) -> Wide {
        let w = |v: usize| v as u128;
        Wide {
            cap: w(self.cap),
            slots: w(self.slots),
            d: w(self.d),
            c: w(self.c),
            k: w(self.k),
        }
    }
}

/// [`Shape`] in `u128`.
#[derive(Debug, Clone, Copy)]
struct Wide {
    cap: u128,
    slots: u128,
    d: u128,
    c: u128,
    k: u128,
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
    fn reserve(&mut self, s: Wide, sz: &mut impl Sizer) -> Result<()> {
        sz.grow(&mut self.sample_loss, s.cap, "per-sample losses")?;
        sz.grow(&mut self.grad_features, s.cap * s.d, "feature gradient")
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
    fn reserve(&mut self, s: Wide, sz: &mut impl Sizer) -> Result<()> {
        sz.grow(&mut self.unit, s.cap * s.d, "normalised features")?;
        sz.grow(&mut self.inv_norm, s.cap, "feature norms")?;
        sz.grow(&mut self.proj, s.cap, "feature norms")
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
    fn reserve(&mut self, s: Wide, sz: &mut impl Sizer) -> Result<()> {
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
            sz.grow(v, s.cap, "per-sample state")?;
        }
        Ok(())
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
    fn reserve(&mut self, s: Wide, sz: &mut impl Sizer) -> Result<()> {
        sz.grow(&mut self.start, s.c + 1, "class index")?;
        sz.grow(&mut self.cursor, s.c, "class index")?;
        sz.grow(&mut self.samples, s.cap, "class index")
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
    fn reserve(&mut self, s: Wide, sz: &mut impl Sizer) -> Result<()> {
        let subcentres = if s.k > 1 { s.c * s.cap } else { 0 };
        sz.grow(&mut self.subcentre, subcentres, "arg-max sub-centres")?;
        sz.grow(&mut self.partials, s.slots * 2 * s.cap, "partial sums")?;
        sz.grow(&mut self.rows, s.slots * 2 * s.cap, "class-pass rows")?;
        self.by_class.reserve(s, sz)?;
        self.samples.reserve(s, sz)
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
    fn reserve(&mut self, s: Wide, sz: &mut impl Sizer) -> Result<()> {
        let small = s.cap.min(SMALL_BATCH as u128);
        // small ≤ 16 and d ≤ isize::MAX / 8 (HeadConfig::validate)
        let scratch = small_backward_scratch(small as usize, s.d as usize) as u128;
        sz.grow(
            &mut self.small_acc,
            s.slots * small * s.d,
            "backward accumulators",
        )?;
        sz.grow(&mut self.small_rows, s.slots * scratch, "backward scratch")?;
        sz.grow(
            &mut self.dx_partial,
            s.slots * s.cap * s.d,
            "partial feature gradients",
        )
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
    /// # Panics
    ///
    /// If the buffers cannot be allocated, as `Vec::with_capacity` would;
    /// [`Self::try_new`] returns the error instead.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(10, 16), 0).unwrap();
    /// let ws = Workspace::new(&head, 32);
    /// assert_eq!(ws.grad_weight().len(), 10 * 16);
    /// ```
    pub fn new(head: &ArcFaceHead<T>, capacity: usize) -> Self {
        Self::try_new(head, capacity).unwrap_or_else(|e| panic!("Workspace::new: {e}"))
    }

    /// [`Self::new`], or [`Error::OutOfMemory`](crate::Error::OutOfMemory)
    /// naming the buffer that could not be had.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(100_000, 512), 0).unwrap();
    /// let err = Workspace::try_new(&head, usize::MAX / 4).unwrap_err();
    /// assert!(matches!(err, Error::OutOfMemory { .. }));
    /// ```
    pub fn try_new(head: &ArcFaceHead<T>, capacity: usize) -> Result<Self> {
        Self::build(head, capacity, true)
    }

    /// Buffers for inference only (`logits_into`, `loss`): no (C·K)×D
    /// gradient buffer. A training step on it allocates that buffer once.
    ///
    /// # Panics
    ///
    /// If the buffers cannot be allocated; [`Self::try_inference`] returns
    /// the error instead.
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
        Self::try_inference(head, capacity).unwrap_or_else(|e| panic!("Workspace::inference: {e}"))
    }

    /// [`Self::inference`], or [`Error::OutOfMemory`](crate::Error::OutOfMemory).
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(10, 8), 0).unwrap();
    /// assert_eq!(Workspace::try_inference(&head, 4).unwrap().capacity(), 4);
    /// ```
    pub fn try_inference(head: &ArcFaceHead<T>, capacity: usize) -> Result<Self> {
        Self::build(head, capacity, false)
    }

    /// The bytes a workspace for a head of configuration `cfg` holds, for
    /// batches of up to `capacity` samples on `threads` threads (the size of
    /// the pool the steps run on, [`Threads::count`](crate::Threads::count)), with the (C·K)×D
    /// weight gradient when `training` (as [`Self::new`]) or without it
    /// (as [`Self::inference`]). Computed by the same code that sizes the
    /// buffers, without allocating; to within 64 bytes a buffer.
    ///
    /// ```
    /// # use arcface::*;
    /// let cfg = HeadConfig::new(100_000, 512);
    /// let threads = Threads::Sequential.count();
    /// let train = Workspace::<f32>::bytes_needed(&cfg, 256, threads, true);
    /// let infer = Workspace::<f32>::bytes_needed(&cfg, 256, threads, false);
    /// assert_eq!(train - infer, 100_000 * 512 * 4);
    /// assert!(infer >= 256 * 100_000 * 4); // the N×C products
    /// ```
    pub fn bytes_needed(cfg: &HeadConfig, capacity: usize, threads: usize, training: bool) -> u128 {
        let mut ws = Self::empty(cfg.num_classes, cfg.num_subcenters, cfg.in_channels);
        let mut count = Count::default();
        let sized = ws.size(capacity.max(1), threads, training, &mut count);
        debug_assert!(sized.is_ok(), "counting never fails");
        count.bytes
    }

    fn empty(c: usize, k: usize, d: usize) -> Self {
        Self {
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
        }
    }

    fn build(head: &ArcFaceHead<T>, capacity: usize, grads: bool) -> Result<Self> {
        let (c, k, _, d) = head.dims();
        let mut ws = Self::empty(c, k, d);
        ws.size(
            capacity.max(1),
            head.threads().count(),
            grads,
            &mut Allocate,
        )?;
        Ok(ws)
    }

    /// Sizes every buffer for steps of `n` samples on `threads` threads,
    /// with the weight gradient when `grads`: the one description of what a
    /// workspace holds, run to allocate ([`Allocate`]) or to count
    /// ([`Count`]).
    fn size(&mut self, n: usize, threads: usize, grads: bool, sz: &mut impl Sizer) -> Result<()> {
        if grads {
            let w = self.shape.wide();
            sz.grow(
                &mut self.results.grad_weight,
                w.c * w.k * w.d,
                "weight gradient",
            )?;
        }
        self.reserve_with(n, threads, sz)
    }

    /// Grows the buffers for steps of `n` samples on `threads` threads.
    pub(super) fn reserve(&mut self, n: usize, threads: usize) -> Result<()> {
        self.reserve_with(n, threads, &mut Allocate)
    }

    /// Grows the weight gradient of an inference workspace for its first
    /// training step.
    pub(super) fn reserve_grad_weight(&mut self) -> Result<()> {
        self.size(0, 0, true, &mut Allocate)
    }

    fn reserve_with(&mut self, n: usize, threads: usize, sz: &mut impl Sizer) -> Result<()> {
        let mut s = self.shape;
        s.cap = s.cap.max(n);
        s.slots = s.slots.max(threads.clamp(1, 256));
        let w = s.wide();
        self.results.reserve(w, sz)?;
        self.features.reserve(w, sz)?;
        sz.grow(&mut self.products, w.cap * w.c * w.k, "products")?;
        self.class_pass.reserve(w, sz)?;
        self.backward.reserve(w, sz)?;
        // only once every buffer has its size
        self.shape = s;
        Ok(())
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
