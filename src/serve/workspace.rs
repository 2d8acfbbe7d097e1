//! [`ServeWorkspace`]: the scratch of [`HalfHead::logits_into`].

use super::{HalfFloat, HalfHead};
use crate::error::Result;
use crate::memory::out_of_memory;
use crate::SMALL_BATCH;

/// Reusable buffers for [`HalfHead::logits_into`]: the normalised
/// features, and the samples by word and the products of one group of at
/// most [`SMALL_BATCH`] samples. Built for a batch size, it
/// grows (allocates) only for a larger batch or more threads.
///
/// ```
/// use arcface::{half::bf16, ArcFaceHead, HalfHead, HeadConfig, ServeWorkspace};
/// let served = HalfHead::<bf16>::from_head(&ArcFaceHead::new(HeadConfig::new(4, 8), 0).unwrap()).unwrap();
/// let mut ws = ServeWorkspace::new(&served, 8).unwrap();
/// let mut out = vec![0.0f32; 8 * 4];
/// served.logits_into(&[0.5; 64], &mut ws, &mut out).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServeWorkspace {
    /// x̂, N×D.
    pub(super) unit: Vec<f32>,
    /// One group's samples by word (`kernels/half`'s layout).
    pub(super) xt: Vec<f32>,
    /// The scaled products of one group, (C·K)×group.
    pub(super) pt: Vec<f32>,
}

impl ServeWorkspace {
    /// Buffers for batches of up to `n` samples of `head` on the current
    /// thread count; an error if they cannot be allocated.
    ///
    /// ```
    /// use arcface::{half::f16, ArcFaceHead, HalfHead, HeadConfig, ServeWorkspace};
    /// let served = HalfHead::<f16>::from_head(&ArcFaceHead::new(HeadConfig::new(4, 8), 0).unwrap()).unwrap();
    /// assert!(ServeWorkspace::new(&served, 1).is_ok());
    /// ```
    pub fn new<H: HalfFloat>(head: &HalfHead<H>, n: usize) -> Result<Self> {
        let cfg = head.config();
        let mut ws = Self::default();
        ws.fit(n, cfg.in_channels, cfg.num_classes * cfg.num_subcenters)?;
        Ok(ws)
    }

    /// Grows the buffers to a batch of `n` samples of `d` and `rows`
    /// weight rows.
    pub(super) fn fit(&mut self, n: usize, d: usize, rows: usize) -> Result<()> {
        let group = n.min(SMALL_BATCH);
        grow(&mut self.unit, n.saturating_mul(d), "features")?;
        grow(&mut self.xt, group * 2 * d.div_ceil(2), "features by word")?;
        grow(&mut self.pt, rows.saturating_mul(group), "products")
    }
}

/// `v` grown (zero-filled) to at least `len` elements, or the allocation
/// error.
fn grow(v: &mut Vec<f32>, len: usize, what: &'static str) -> Result<()> {
    if v.len() < len {
        v.try_reserve_exact(len - v.len())
            .map_err(|_| out_of_memory::<f32>(what, len as u128))?;
        v.resize(len, 0.0);
    }
    Ok(())
}
