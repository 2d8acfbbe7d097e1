//! The class lifecycle of a deployed head: enrolling new classes from a few
//! embeddings, retiring or removing classes, and fine-tuning only some.
//!
//! - [`ArcFaceHead::enrol`] / [`ArcFaceHead::enrol_many`]: weight imprinting
//!   (see [`enrol`](self::enrol) for the rule), with a seeded spherical
//!   k-means ([`spherical_kmeans`]) for heads with sub-centres.
//! - [`ArcFaceHead::retire`]: masks classes out (logits −∞, no softmax
//!   term, no update) without moving memory; [`ArcFaceHead::remove_classes`]
//!   compacts and returns the old → new map.
//! - [`ArcFaceHead::set_trainable_classes`] and
//!   [`crate::TrainConfig::train_classes`]: the other classes' rows are frozen.
//!
//! After the number of classes changes, the buffers sized by it follow:
//! [`crate::Workspace::fit`], [`crate::Optimizer::fit`] (new rows get zero
//! state) or [`crate::Optimizer::remap_classes`] (after a removal). The
//! head's own buffers grow geometrically ([`ArcFaceHead::class_capacity`]).
//! Checkpoints record the class count, the margins and the retired list.
//!
//! ```
//! use arcface::{ArcFaceHead, Batch, Enrolment, HeadConfig, Optimizer, OptimizerConfig, Workspace};
//! let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 3), 0).unwrap();
//! let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
//! let mut ws = Workspace::new(&head, 2);
//! // a new class from two photos' embeddings
//! let x = [0.2, 0.9, -0.1, 0.25, 0.8, 0.0];
//! let new = head.enrol(&x, &Enrolment::default()).unwrap();
//! ws.fit(&head).unwrap();
//! opt.fit(&head).unwrap();
//! // fine-tune the new class only: the old rows cannot drift
//! head.set_trainable_classes(Some(&[new])).unwrap();
//! let before = head.weight()[..12].to_vec();
//! let y = [new as i64, new as i64];
//! head.forward_backward(&Batch::new(&x, &y), &mut ws).unwrap();
//! opt.step(&mut head, ws.grad_weight(), 0.1).unwrap();
//! assert_eq!(&head.weight()[..12], &before[..]);
//! // retire class 0: never predicted again
//! head.retire(&[0]).unwrap();
//! assert!(head.predict(&x).unwrap().labels.iter().all(|&l| l != 0));
//! ```

mod enrol;
mod kmeans;

pub use kmeans::{spherical_kmeans, SphericalKMeans};

#[cfg(doc)]
use crate::ArcFaceHead;

/// How [`ArcFaceHead::enrol`] builds a new class (defaults and checks in
/// `crate::config`: [`Enrolment::default`], [`Enrolment::validate`]).
///
/// ```
/// let how = arcface::Enrolment { margin: Some(0.3), ..Default::default() };
/// assert_eq!(how.kmeans_iters, arcface::Enrolment::DEFAULT_KMEANS_ITERS);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Enrolment {
    /// Seed of the spherical k-means' k-means++ initialisation (K > 1).
    pub seed: u64,
    /// Lloyd iterations at most (≥ 1).
    pub kmeans_iters: usize,
    /// The new class's margin; `None`: the margin every class of the head
    /// shares (an error when the per-class margins differ).
    pub margin: Option<f64>,
    /// The new class's loss weight, used when the loss has class weights
    /// (finite).
    pub class_weight: f64,
}
