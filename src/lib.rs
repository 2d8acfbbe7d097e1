//! # arcface
//!
//! mmpretrain 1.2.0's `ArcFaceClsHead` (ArcFace and sub-centre ArcFace) on
//! the CPU: the same numbers as upstream, an analytic backward pass, and
//! SIMD kernels (AVX-512, AVX2, NEON) around three `faer` matrix products.
//!
//! ## The maths
//!
//! Features $x_i \in \mathbb R^D$ and weights $W \in \mathbb R^{CK\times D}$
//! (row $r = cK + k$) are normalised, $\hat v = v / \max(\lVert v\rVert, 10^{-12})$.
//! The cosine of sample $i$ and class $c$ is the best of its $K$ sub-centres,
//! $$\cos_{ic} = \max_k \hat x_i \cdot \hat w_{cK+k}.$$
//! Inference logits are $S\cos_{ic}$. In training, the target class $y_i$
//! gets the additive angular margin (see [`margin_target`]):
//! $z_{iy} = S\cos(\arccos(\cos_{iy}) + m_y)$ when $\cos_{iy} > -\cos m_y$
//! (else $S(\cos_{iy} - m_y \sin m_y)$; `easy_margin` uses $\cos > 0$ and
//! leaves the cosine unchanged otherwise). The loss is the cross-entropy
//! $\ell_i = -\sum_c w_c t_{ic} \log \operatorname{softmax}(z_i)_c$ with
//! one-hot, soft (mixup) or smoothed targets, reduced over the batch.
//!
//! The backward pass is analytic ([`ArcFaceHead::forward_backward`]):
//! $\partial L/\partial z = \lambda(P a - V)$, scaled by $S$ and by the margin
//! derivative $\sin(\theta + m)/\sin\theta$ at the target, given only to the
//! arg-max sub-centre, and mapped through the normalisations.
//!
//! ## Where it departs from upstream
//!
//! Deliberately, and documented at each item: cosines are clamped before the
//! margin, which is evaluated only in the target column (D1); gradients are
//! finite for finite input (D2); `Reduction::Sum` works (D3); `use_soft`
//! without soft targets is an error (D4); adaptive margins never give NaN and
//! count all classes (D5, D6); margins must be finite (D7); the derived
//! margin constants use one f64 formula, and the margin is evaluated
//! through `cos m` and `sin m` without an arccosine (D8); margins files are parsed
//! strictly (D10); `num_classes = 0` and `in_channels = 0` are rejected (D11);
//! every label is range-checked (D12).
//!
//! ## Example
//!
//! ```
//! use arcface::{ArcFaceHead, Batch, HeadConfig, Workspace};
//! let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
//! let x = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
//! let labels = [1, 0];
//! let mut ws = Workspace::new(&head, 2);
//! let first = head.forward_backward(&Batch::new(&x, &labels), &mut ws).unwrap();
//! for _ in 0..20 {
//!     head.forward_backward(&Batch::new(&x, &labels), &mut ws).unwrap();
//!     head.sgd_step(ws.grad_weight(), 0.05).unwrap();
//! }
//! let last = head.loss(&Batch::new(&x, &labels), &mut ws).unwrap();
//! assert!(last < first);
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod aligned;
mod checkpoint;
mod clean;
mod config;
mod error;
mod gemm;
mod half_precision;
mod head;
mod io;
pub(crate) mod kernels;
mod lifecycle;
mod margin;
mod memory;
pub mod ops;
mod optim;
mod parallel;
mod partial_fc;
mod real;
mod rng;
mod serve;
mod simd;
mod train;

pub use clean::{AngleStats, ClassCleaning, CleanConfig, CleanRule, Cleaning};
pub use config::{HeadConfig, LabelSmooth, LossConfig, MarginGrad, Margins, Reduction, SmoothMode};
pub use error::{Error, Result};
/// The `half` crate, for its `f16` and `bf16` types.
pub use half;
pub use half_precision::{narrow_bf16, narrow_f16, widen_bf16, widen_f16};
pub use head::{ArcFaceHead, Batch, Prediction, Workspace, NORM_EPS, SMALL_BATCH};
pub use lifecycle::{spherical_kmeans, Enrolment, SphericalKMeans};
pub use margin::{
    load_margins_file, margin_target, parse_margins_file, AdaptiveMargins, Branch, MarginConstants,
    SIN_THETA_FLOOR,
};
pub use parallel::Threads;
pub use partial_fc::{PartialFc, SampledStep};
pub use real::Real;
pub use rng::SplitMix64;
pub use serve::{HalfFloat, HalfHead, ServeWorkspace};
pub use simd::simd_level;

pub use checkpoint::{
    load_head, load_optimizer, optimizer_path, save_head, save_optimizer, Checkpoint, WeightDtype,
    METADATA_KEY, WEIGHT_KEY,
};
pub use optim::{AdamW, LrSchedule, LrScheduler, Optimizer, OptimizerConfig, Sgd};
pub use train::{
    evaluate, Dataset, EpochInfo, EvalMetrics, Event, RunRecord, StepInfo, TrainConfig,
    TrainReport, Trainer,
};
