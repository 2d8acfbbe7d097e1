//! Serving in half precision: [`HalfHead`] holds the weights in f16 or bf16
//! (half the memory of f32) and computes the inference logits and
//! predictions of [`ArcFaceHead::logits`] and [`ArcFaceHead::predict`]
//! from them, widening each weight row to f32 in registers
//! (`kernels/half/`); all arithmetic is f32. Where the CPU has AVX-512 or
//! F16C, f16 widens by the hardware conversion and sums in a different order from
//! the integer widening elsewhere: each path is deterministic, and paths
//! agree up to f32 rounding.
//!
//! The logits are $z_{ic} = S \max_k \cos\theta_{i,ck}$ with
//! $\cos\theta_{i,r} = \hat x_i \cdot w_r / \max(\lVert w_r\rVert, \epsilon)$,
//! the row norms taken once, in f32, of the half rows' exact values;
//! retired classes are $-\infty$. For the same half values this is the f32
//! head's result up to the rounding of a few f32 operations. Training keeps
//! f32 weights: a `HalfHead` only serves.

mod workspace;

pub use workspace::ServeWorkspace;

use crate::checkpoint::Checkpoint;
use crate::config::HeadConfig;
use crate::error::{check_len, Error, Result};
use crate::head::{
    batch_size, check_class_list, clamped_norm, softmax_scores, unit_row, ArcFaceHead, Prediction,
};
pub use crate::kernels::HalfFloat;
use crate::kernels::{
    interleave_samples, pack_row, panel_index, panel_words, unpack_row, HalfForward, SumSq, PANEL,
};
use crate::memory::try_filled;
use crate::parallel::{for_blocks, small_batch_blocks, RowSplit, Rows, Threads};
use crate::SMALL_BATCH;
use core::marker::PhantomData;

/// An inference-only ArcFace head whose (C·K)×D weights are stored in
/// half precision `H` ([`half::f16`] or [`half::bf16`]).
///
/// ```
/// use arcface::{half::bf16, ArcFaceHead, HalfHead, HeadConfig};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(10, 16), 3).unwrap();
/// let served = HalfHead::<bf16>::from_head(&head).unwrap();
/// let x: Vec<f32> = (0..16).map(|j| (j as f32).sin()).collect();
/// assert_eq!(served.predict(&x).unwrap().labels, head.predict(&x).unwrap().labels);
/// assert_eq!(served.weight_bytes(), 16 * 16 * 2); // 10 rows padded to a panel of 16
/// ```
#[derive(Debug, Clone)]
pub struct HalfHead<H: HalfFloat> {
    cfg: HeadConfig,
    /// The rows, `words` u32 each (two halves a word), in panels of 16
    /// rows padded with zero rows (see `kernels/half/`).
    w: Vec<u32>,
    words: usize,
    /// $S / \max(\lVert w_r\rVert, \epsilon)$ per row.
    scale: Vec<f32>,
    /// Per class, whether it is retired (`None`: none is).
    retired: Option<Vec<bool>>,
    arch: pulp::Arch,
    threads: Threads,
    _h: PhantomData<H>,
}

impl<H: HalfFloat> HalfHead<H> {
    /// The f32 head's weights rounded to `H` (to nearest), with its
    /// configuration and retired classes. A weight that does not fit `H`
    /// (beyond ±65504 in f16) is an [`Error::NonFinite`] naming its row and
    /// column.
    ///
    /// ```
    /// use arcface::{half::f16, ArcFaceHead, HalfHead, HeadConfig};
    /// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(1, 2), &[1e5, 0.0]).unwrap();
    /// let err = HalfHead::<f16>::from_head(&head).unwrap_err();
    /// assert!(err.to_string().contains("f16 weight"), "{err}");
    /// ```
    pub fn from_head(head: &ArcFaceHead<f32>) -> Result<Self> {
        let w = head.weight();
        Self::build(head.config().clone(), &head.retired(), |i| H::bits_of(w[i]))
    }

    /// A head from weights already in `H` ((C·K)×D, row `c·K + k`).
    /// Non-finite weights are an [`Error::NonFinite`] naming the first
    /// one's row and column; nothing is built.
    ///
    /// ```
    /// use arcface::{half::f16, HalfHead, HeadConfig};
    /// let w: Vec<f16> = [1.0f32, 0.0, 0.0, 1.0].iter().map(|&v| f16::from_f32(v)).collect();
    /// let h = HalfHead::from_weight(HeadConfig::new(2, 2).with_scale(10.0), &w).unwrap();
    /// let z = h.logits(&[3.0, 4.0]).unwrap();
    /// assert!((z[0] - 6.0).abs() < 1e-5 && (z[1] - 8.0).abs() < 1e-5);
    /// let mut bad = w.clone();
    /// bad[3] = f16::INFINITY;
    /// let err = HalfHead::from_weight(HeadConfig::new(2, 2), &bad).unwrap_err();
    /// assert!(matches!(err, arcface::Error::NonFinite { row: 1, col: 1, .. }));
    /// ```
    pub fn from_weight(cfg: HeadConfig, weight: &[H]) -> Result<Self> {
        cfg.validate()?;
        let (rows, d) = cfg.weight_shape();
        check_len("weight", weight.len(), rows * d)?;
        Self::build(cfg, &[], |i| weight[i].to_bits())
    }

    /// A head from a checkpoint whose weights are stored in `H`'s dtype,
    /// read as they are (never widened as a whole): with `config = None`
    /// the stored configuration, as [`Checkpoint::to_head`]; its retired
    /// classes stay retired. Another dtype is an [`Error::Checkpoint`].
    ///
    /// ```
    /// use arcface::{half::bf16, ArcFaceHead, Checkpoint, HalfHead, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(5, 8), 1).unwrap();
    /// let ck = Checkpoint::from_head(&head, WeightDtype::BF16).unwrap();
    /// let served = HalfHead::<bf16>::from_checkpoint(&ck, None).unwrap();
    /// assert_eq!(served.config(), head.config());
    /// let f32_ck = Checkpoint::from_head(&head, WeightDtype::F32).unwrap();
    /// assert!(HalfHead::<bf16>::from_checkpoint(&f32_ck, None).is_err());
    /// ```
    pub fn from_checkpoint(ck: &Checkpoint, config: Option<HeadConfig>) -> Result<Self> {
        let cfg = ck.resolve_config(config)?;
        let (dtype, bytes) = ck.raw_weight();
        if dtype != H::DTYPE {
            return Err(Error::Checkpoint {
                path: "<memory>".into(),
                reason: format!(
                    "stores its weights as {}; a HalfHead<{}> reads {} weights",
                    dtype.name(),
                    H::NAME,
                    H::DTYPE.name()
                ),
            });
        }
        Self::build(cfg, ck.retired(), |i| {
            u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])
        })
    }

    /// Packs the rows (element `i` of W has bits `bits(i)`), checks them
    /// and takes their norms, one f32 row at a time.
    fn build(cfg: HeadConfig, retired: &[usize], bits: impl Fn(usize) -> u16) -> Result<Self> {
        let (rows, d) = cfg.weight_shape();
        let c = cfg.num_classes;
        let retired = retired_flags(retired, c)?;
        let words = d.div_ceil(2);
        let mut w = try_filled(panel_words(rows, words), 0u32, "half weights")?;
        let mut scale = try_filled(rows, 0f32, "weight norms")?;
        let mut row = try_filled(d, 0f32, "a weight row")?;
        let mut packed = try_filled(words, 0u32, "a packed row")?;
        let arch = crate::simd::arch();
        let s = cfg.scale as f32;
        for r in 0..rows {
            pack_row((r * d..(r + 1) * d).map(&bits), &mut packed);
            for (j, &word) in packed.iter().enumerate() {
                w[panel_index(words, r, j)] = word;
            }
            unpack_row::<H>(&packed, &mut row);
            let ss = arch.dispatch(SumSq { x: &row });
            let (norm, _) = clamped_norm(ss, &row).map_err(|e| e.into_error(H::WHAT, r))?;
            scale[r] = s / norm;
        }
        Ok(Self {
            cfg,
            w,
            words,
            scale,
            retired,
            arch,
            threads: Threads::default(),
            _h: PhantomData,
        })
    }

    /// The configuration (scale, shape; margins are kept but inference
    /// does not use them).
    ///
    /// ```
    /// use arcface::{half::f16, HalfHead, HeadConfig};
    /// let h = HalfHead::<f16>::from_weight(HeadConfig::new(1, 2), &[f16::ONE, f16::ZERO]).unwrap();
    /// assert_eq!(h.config().in_channels, 2);
    /// ```
    pub fn config(&self) -> &HeadConfig {
        &self.cfg
    }

    /// Bytes held by the weights: 2 per weight (plus 2 per row for an odd
    /// D), the rows padded with zero rows to a multiple of 16 (the kernel
    /// reads them in panels of 16 rows).
    ///
    /// ```
    /// use arcface::{half::bf16, ArcFaceHead, HalfHead, HeadConfig};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(40, 3), 0).unwrap();
    /// assert_eq!(HalfHead::<bf16>::from_head(&head).unwrap().weight_bytes(), 48 * 4 * 2);
    /// ```
    pub fn weight_bytes(&self) -> usize {
        self.w.len() * 4
    }

    /// With the thread policy `t` (as [`ArcFaceHead::with_threads`]).
    ///
    /// ```
    /// use arcface::{half::f16, HalfHead, HeadConfig, Threads};
    /// let h = HalfHead::<f16>::from_weight(HeadConfig::new(1, 2), &[f16::ONE, f16::ZERO]).unwrap();
    /// assert_eq!(h.with_threads(Threads::Sequential).threads(), Threads::Sequential);
    /// ```
    pub fn with_threads(mut self, t: Threads) -> Self {
        self.threads = t;
        self
    }

    /// The thread policy.
    ///
    /// ```
    /// use arcface::{half::f16, HalfHead, HeadConfig, Threads};
    /// let h = HalfHead::<f16>::from_weight(HeadConfig::new(1, 2), &[f16::ONE, f16::ZERO]).unwrap();
    /// assert_eq!(h.threads(), Threads::Rayon);
    /// ```
    pub fn threads(&self) -> Threads {
        self.threads
    }

    /// The retired classes, ascending.
    ///
    /// ```
    /// use arcface::{half::f16, ArcFaceHead, HalfHead, HeadConfig};
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 0).unwrap();
    /// head.retire(&[1]).unwrap();
    /// assert_eq!(HalfHead::<f16>::from_head(&head).unwrap().retired(), vec![1]);
    /// ```
    pub fn retired(&self) -> Vec<usize> {
        self.retired.as_ref().map_or_else(Vec::new, |r| {
            r.iter()
                .enumerate()
                .filter(|(_, &x)| x)
                .map(|(c, _)| c)
                .collect()
        })
    }

    /// Inference logits $S \max_k \cos$ (no margin), N×C, as
    /// [`ArcFaceHead::logits`].
    ///
    /// ```
    /// use arcface::{half::bf16, ArcFaceHead, HalfHead, HeadConfig};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(6, 8).with_subcenters(2), 4).unwrap();
    /// let served = HalfHead::<bf16>::from_head(&head).unwrap();
    /// let x = [0.3f32; 16];
    /// let (a, b) = (served.logits(&x).unwrap(), head.logits(&x).unwrap());
    /// assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 0.5)); // bf16: ~3 digits
    /// ```
    pub fn logits(&self, features: &[f32]) -> Result<Vec<f32>> {
        let n = self.batch_size(features)?;
        let mut ws = ServeWorkspace::new(self, n)?;
        let mut out = try_filled(n * self.cfg.num_classes, 0f32, "logits")?;
        self.logits_into(features, &mut ws, &mut out)?;
        Ok(out)
    }

    /// [`Self::logits`] into `out` (N×C), with the scratch of `ws` (which
    /// allocates only when it is smaller than the batch needs). On an
    /// error `out` is unchanged.
    ///
    /// ```
    /// use arcface::{half::f16, ArcFaceHead, HalfHead, HeadConfig, ServeWorkspace};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// let served = HalfHead::<f16>::from_head(&head).unwrap();
    /// let mut ws = ServeWorkspace::new(&served, 1).unwrap();
    /// let mut out = [0.0f32; 3];
    /// served.logits_into(&[1.0, 2.0, 3.0, 4.0], &mut ws, &mut out).unwrap();
    /// assert!(served.logits_into(&[f32::NAN; 4], &mut ws, &mut out).is_err());
    /// ```
    pub fn logits_into(
        &self,
        features: &[f32],
        ws: &mut ServeWorkspace,
        out: &mut [f32],
    ) -> Result<()> {
        let n = self.batch_size(features)?;
        let (c, k, d) = (
            self.cfg.num_classes,
            self.cfg.num_subcenters,
            self.cfg.in_channels,
        );
        check_len("out", out.len(), n * c)?;
        let threads = self.threads.count();
        let blocks = small_batch_blocks(self.weight_bytes(), threads, threads);
        ws.fit(n, d, c * k)?;
        for (i, (x, u)) in features
            .chunks_exact(d)
            .zip(ws.unit.chunks_exact_mut(d))
            .enumerate()
        {
            unit_row(self.arch, x, i, u)?;
        }
        // blocks of whole panels; a block's products are its rows' (the
        // last panel's padding rows have none)
        let split = RowSplit::new(self.scale.len().div_ceil(PANEL), blocks);
        for i0 in (0..n).step_by(SMALL_BATCH) {
            let nb = SMALL_BATCH.min(n - i0);
            let xt = &mut ws.xt[..nb * 2 * self.words];
            interleave_samples(&ws.unit[i0 * d..(i0 + nb) * d], d, nb, xt);
            let out = &mut out[i0 * c..(i0 + nb) * c];
            if k == 1 && split.blocks() == 1 {
                // one block of one row a class: its products are the logits
                self.products(xt, nb, &split, out);
                self.retire(nb, out);
            } else {
                self.products(xt, nb, &split, &mut ws.pt);
                self.gather(&ws.pt[..c * k * nb], nb, &split, out);
            }
        }
        Ok(())
    }

    /// `pt` = scaled products of every row with the `nb` samples `xt` (by
    /// word), block by block of `split` (in panels) on as many threads:
    /// a block's rows `r0 .. r1` take `pt[r0·nb .. r1·nb]`, sample by
    /// sample (nb × (r1 − r0)).
    fn products(&self, xt: &[f32], nb: usize, split: &RowSplit, pt: &mut [f32]) {
        let (p, d) = (self.words, self.cfg.in_channels);
        let rows = self.scale.len();
        let (arch, w, scale) = (self.arch, &self.w, &self.scale);
        for_blocks(
            split,
            Rows(&mut pt[..rows * nb], PANEL * nb),
            |b, pt| {
                let first = b.rows.start * PANEL;
                HalfForward::<H> {
                    w: &w[first * p..b.rows.end * PANEL * p],
                    p,
                    xt,
                    d,
                    n: nb,
                    scale: &scale[first..rows.min(b.rows.end * PANEL)],
                    pt,
                    _h: PhantomData,
                }
                .dispatch(arch)
            },
            |(), ()| (),
        );
    }

    /// The logits of `nb` samples (N×C rows of `out`) from the products
    /// `pt` of [`Self::products`]: the maximum over each class's
    /// sub-centres, −∞ for a retired class.
    fn gather(&self, pt: &[f32], nb: usize, split: &RowSplit, out: &mut [f32]) {
        let (c, k) = (self.cfg.num_classes, self.cfg.num_subcenters);
        let rows = c * k;
        // rows per block (all of them in one block)
        let per = split.block(0).rows.len() * PANEL;
        let block = |r0: usize| (r0 * nb, rows.min(r0 + per) - r0);
        if k == 1 {
            for r0 in (0..rows).step_by(per) {
                let (base, len) = block(r0);
                for i in 0..nb {
                    let from = &pt[base + i * len..base + (i + 1) * len];
                    out[i * c + r0..i * c + r0 + len].copy_from_slice(from);
                }
            }
        } else {
            for (i, out) in out.chunks_exact_mut(c).enumerate() {
                // the block of the rows being read, advanced as they pass it
                let mut r0 = 0;
                let (mut base, mut len) = block(0);
                let mut value = |r: usize| {
                    if r >= r0 + per {
                        r0 += per;
                        (base, len) = block(r0);
                    }
                    pt[base + i * len + r - r0]
                };
                for (cl, o) in out.iter_mut().enumerate() {
                    let first = value(cl * k);
                    *o = (1..k).fold(first, |m, kk| m.max(value(cl * k + kk)));
                }
            }
        }
        self.retire(nb, out);
    }

    /// −∞ for the retired classes in the logits `out` of `nb` samples.
    fn retire(&self, nb: usize, out: &mut [f32]) {
        let c = self.cfg.num_classes;
        if let Some(retired) = &self.retired {
            for (cl, _) in retired.iter().enumerate().filter(|(_, &r)| r) {
                (0..nb).for_each(|i| out[i * c + cl] = f32::NEG_INFINITY);
            }
        }
    }

    /// `predict` as [`ArcFaceHead::predict`]: the softmax of the logits and
    /// the arg-max label (lowest class on ties), retired classes scoring 0.
    ///
    /// ```
    /// use arcface::{half::f16, HalfHead, HeadConfig};
    /// let w: Vec<f16> = [1.0f32, 0.0, 0.0, 1.0].iter().map(|&v| f16::from_f32(v)).collect();
    /// let p = HalfHead::from_weight(HeadConfig::new(2, 2), &w).unwrap().predict(&[0.2, 0.9]).unwrap();
    /// assert_eq!(p.labels, vec![1]);
    /// ```
    pub fn predict(&self, features: &[f32]) -> Result<Prediction<f32>> {
        let scores = self.logits(features)?;
        Ok(softmax_scores(
            self.arch,
            scores,
            self.cfg.num_classes,
            self.retired.as_deref(),
            self.retired(),
        ))
    }

    /// N for a batch of features (non-empty, a whole number of rows).
    fn batch_size(&self, features: &[f32]) -> Result<usize> {
        batch_size(features.len(), self.cfg.in_channels)
    }
}

/// Per class whether it is in `list` (`None` for an empty list), checked
/// as [`ArcFaceHead::retire`] checks it: known classes, none twice, one
/// left active.
fn retired_flags(list: &[usize], c: usize) -> Result<Option<Vec<bool>>> {
    if list.is_empty() {
        return Ok(None);
    }
    check_class_list("retired", list, c)?;
    if list.len() >= c {
        return Err(crate::config::invalid(
            "retired",
            format!(
                "retires every class ({} of {c}); a head keeps at least one",
                list.len()
            ),
        ));
    }
    let mut flags = vec![false; c];
    list.iter().for_each(|&cl| flags[cl] = true);
    Ok(Some(flags))
}
