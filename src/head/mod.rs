//! The head: weights, margins, inference, and the fused training step.
//!
//! A step follows the files of this module in order:
//! [`validate`] (shapes, labels, targets) → [`norm`] (x̂ = x / ‖x‖) →
//! [`forward`] (the products Pᵀ = W X̂ᵀ; logits and `predict` for inference)
//! → [`class_pass`] (sub-centre maximum, margin, softmax, loss, and the
//! gradient G' over the products) → [`backward`] (∂X̂ = G'W and
//! ∂W = G'ᵀX̂, through the normalisations). The weights and their cached
//! norms live in [`weights`], the margins in [`margins`], and every buffer a
//! step uses in [`workspace`].

mod backward;
mod batch;
mod class_pass;
mod class_sweeps;
mod classes;
mod forward;
mod grow;
mod margins;
mod norm;
mod sampled;
mod validate;
mod weights;
mod workspace;

pub use batch::Batch;
pub(crate) use classes::check_class_list;
pub(crate) use forward::softmax_scores;
pub use forward::Prediction;
pub(crate) use grow::NewClasses;
pub use norm::NORM_EPS;
pub(crate) use norm::{clamped_norm, unit_row};
pub(crate) use validate::batch_size;
pub use workspace::Workspace;

use crate::aligned::AVec;
use crate::config::{HeadConfig, Reduction};
use crate::error::{check_len, Error, Result};
use crate::kernels::ProjectRows;
use crate::margin::MarginT;
use crate::memory::{bytes_of, out_of_memory};
use crate::parallel::{small_batch_blocks, RowSplit, Threads};
use crate::real::Real;
use class_pass::{LossPlan, Mode};
use weights::RowNorms;

/// Batches of at most this many samples take the fused single-pass backward
/// (memory-bound: W is streamed once); larger ones use three faer products.
///
/// ```
/// assert_eq!(arcface::SMALL_BATCH, 16);
/// ```
pub const SMALL_BATCH: usize = 16;

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
    /// The configuration; its `margins` is the per-class list, the one
    /// store of the margins (see [`margins`]).
    cfg: HeadConfig,
    /// The margin constants of each class rounded to T, derived from
    /// `cfg.margins` by the one setter, `install_margins`.
    margin_consts: Vec<MarginT<T>>,
    class_weight: Option<Vec<T>>,
    weight: AVec<T>,
    /// Cached norms of the weight rows.
    norms: RowNorms<T>,
    /// First weight row holding a non-finite value, if any.
    bad_row: Option<Error>,
    /// Retired classes: masked out of inference and training.
    retired: classes::ClassMask,
    /// Frozen classes: in the softmax, but their rows never change.
    frozen: classes::ClassMask,
    arch: pulp::Arch,
    threads: Threads,
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
        let bound = 1.0 / (cfg.in_channels as f64).sqrt();
        let mut rng = crate::rng::SplitMix64::new(seed);
        Self::build(cfg, |w| {
            for v in w {
                *v = T::from_f64((2.0 * rng.next_f64() - 1.0) * bound);
            }
        })
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
        let (rows, d) = cfg.weight_shape();
        check_len("weight", weight.len(), rows * d)?;
        Self::check_rows(weight, d, crate::simd::arch())?;
        Self::build(cfg, |w| w.copy_from_slice(weight))
    }

    /// The memory a head of configuration `cfg` holds: the weights, three
    /// cached norms per weight row, and per class its margin, the margin's
    /// constants and its loss weight. A training step needs a
    /// [`Workspace`] on top ([`Workspace::bytes_needed`]), and an optimiser
    /// its state ([`crate::Optimizer::bytes_needed`]).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig};
    /// let bytes = ArcFaceHead::<f32>::bytes_needed(&HeadConfig::new(1_000_000, 512));
    /// assert!(bytes > 1_000_000 * 512 * 4 && bytes < 1_000_000 * 600 * 4);
    /// ```
    pub fn bytes_needed(cfg: &HeadConfig) -> u128 {
        let (c, k, d) = (
            cfg.num_classes as u128,
            cfg.num_subcenters as u128,
            cfg.in_channels as u128,
        );
        let class_weights = cfg.loss.class_weight.as_ref().map_or(0, |_| c);
        bytes_of::<T>(c * k * (d + 3) + class_weights)
            + bytes_of::<f64>(c)
            + bytes_of::<MarginT<T>>(c)
    }

    /// Allocates the weights (with `try_reserve`), lets `fill` write them,
    /// then derives everything else from them and from `cfg`.
    fn build(cfg: HeadConfig, fill: impl FnOnce(&mut [T])) -> Result<Self> {
        let (rows, d) = cfg.weight_shape();
        // the largest buffer first, so that a head too large fails at once
        let mut weight = AVec::try_filled(rows * d, T::ZERO)
            .map_err(|_| out_of_memory::<T>("weights", (rows * d) as u128))?;
        let margins = cfg.margins.expand(cfg.num_classes)?;
        fill(&mut weight);
        let mut head = Self {
            margin_consts: Vec::new(),
            class_weight: cfg
                .loss
                .class_weight
                .as_ref()
                .map(|w| w.iter().map(|&v| T::from_f64(v)).collect()),
            weight,
            norms: RowNorms::try_new(rows)?,
            bad_row: None,
            retired: Self::no_flags(cfg.num_classes)?,
            frozen: Self::no_flags(cfg.num_classes)?,
            arch: crate::simd::arch(),
            threads: Threads::default(),
            cfg,
        };
        head.check_margins_fit(&margins)?;
        head.check_loss_fits()?;
        head.install_margins(margins)?;
        head.refresh_norms();
        head.check_weight()?;
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
        crate::simd::simd_level()
    }

    /// Whether a batch of `n` samples takes the small-batch path (one
    /// stream of W forward and one backward) rather than faer's products.
    fn is_small_batch(n: usize) -> bool {
        n <= SMALL_BATCH
    }

    /// The blocks of weight rows the small-batch path streams on separate
    /// threads, given the workspace's per-thread `slots`.
    fn small_batch_split(&self, slots: usize) -> RowSplit {
        let (_, _, ck, d) = self.dims();
        let w_bytes = ck * d * core::mem::size_of::<T>();
        RowSplit::new(ck, small_batch_blocks(w_bytes, self.threads.count(), slots))
    }

    /// (C, K, C·K, D).
    fn dims(&self) -> (usize, usize, usize, usize) {
        let c = self.cfg.num_classes;
        let k = self.cfg.num_subcenters;
        (c, k, c * k, self.cfg.in_channels)
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

    /// Loss and analytic gradients in one call. Gradients go to
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

    /// The loss, and with `backward` the gradients: validate, normalise,
    /// products, class pass, reduction, then the backward products and the
    /// features' normalisation Jacobian.
    fn step(&self, batch: &Batch<'_, T>, ws: &mut Workspace<T>, backward: bool) -> Result<T> {
        self.workspace_for(ws)?;
        let n = self.validate_batch(batch)?;
        self.normalize_features(batch.features, ws, n)?;
        self.products(ws, n);
        let plan = LossPlan::new(&self.cfg.loss, n);

        if backward && ws.results.grad_weight.len() != self.weight.len() {
            // an inference workspace's first training step
            ws.reserve_grad_weight()?;
        }
        self.class_pass(
            ws,
            n,
            Mode::Loss {
                batch,
                plan: &plan,
                backward,
            },
        );
        ws.results.n = n;

        let total = ws.results.sample_loss[..n]
            .iter()
            .fold(T::ZERO, |a, &b| a + b);
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

        let probe_w = self.backward(ws, n);
        // frozen and retired classes: no gradient written (see `classes`)
        self.clear_untrainable(&mut ws.results.grad_weight);
        // the normalisation Jacobian of each feature row
        let d = self.cfg.in_channels;
        let f = &ws.features;
        let probe_x = self.arch.dispatch(ProjectRows {
            g: &mut ws.results.grad_features[..n * d],
            v: &f.unit[..n * d],
            d,
            a: Some(&f.inv_norm[..n]),
            c: &f.proj[..n],
        });
        if probe_w != T::ZERO || probe_x != T::ZERO {
            // the gradients are half written: leave no result
            ws.clear_results();
            return Err(Error::Overflow {
                what: "gradient",
                row: 0,
            });
        }
        ws.results.grad_n = n;
        Ok(value)
    }
}
