//! What [`PartialFc::new`] allocates, counted from the shapes before
//! anything is built (the program's memory preflight reads it).

use super::PartialFc;
use crate::head::{ArcFaceHead, Workspace};
use crate::memory::bytes_of;
use crate::real::Real;
use crate::HeadConfig;

/// The classes the sub-head holds room for: the kept target or a batch's
/// distinct labels, whichever is more, at most C.
pub(super) fn kept_capacity(num_classes: usize, target: usize, batch_capacity: usize) -> usize {
    target.max(batch_capacity.max(1)).min(num_classes)
}

impl<T: Real> PartialFc<T> {
    /// The bytes [`PartialFc::new`] allocates for a head of `cfg` at
    /// `sample_rate`, batches of up to `batch_capacity` samples and
    /// `threads` threads: the sub-head and the training workspace of
    /// C' = max(⌈r·C⌉, batch) kept classes (the step's buffers are sized by
    /// C', not C), and per class the sampler's two `u32` tables, the lazy
    /// state's `u32` and the lifecycle flags' two bytes. An error for a bad
    /// rate.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, PartialFc, Workspace};
    /// let cfg = HeadConfig::new(1_000_000, 512);
    /// let sampled = PartialFc::<f32>::bytes_needed(&cfg, 0.1, 256, 1).unwrap();
    /// let dense = Workspace::<f32>::bytes_needed(&cfg, 256, 1, true);
    /// assert!(sampled * 4 < dense); // 100 000 kept rows, no 1M×512 gradient
    /// assert!(PartialFc::<f32>::bytes_needed(&cfg, 0.0, 256, 1).is_err());
    /// ```
    pub fn bytes_needed(
        cfg: &HeadConfig,
        sample_rate: f64,
        batch_capacity: usize,
        threads: usize,
    ) -> crate::Result<u128> {
        let c = cfg.num_classes;
        let target = Self::kept_target(sample_rate, c)?;
        let cap = batch_capacity.max(1);
        let kept = kept_capacity(c, target, cap);
        let mut sub = cfg.clone();
        sub.num_classes = kept;
        let soft = if cfg.loss.use_soft { kept * cap } else { 0 };
        let per_class = bytes_of::<u32>(3 * c as u128) + 2 * c as u128;
        Ok(ArcFaceHead::<T>::bytes_needed(&sub)
            + Workspace::<T>::bytes_needed(&sub, cap, threads, true)
            + bytes_of::<T>(soft as u128)
            + bytes_of::<i64>(cap as u128)
            + bytes_of::<u32>(3 * (kept + cap) as u128)
            + per_class
            + bytes_of::<[f64; 4]>(Self::FLUSH_WINDOW as u128 + 1))
    }
}
