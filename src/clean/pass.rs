//! The one pass over the samples: each sample's cosines to the K
//! sub-centres of its own class, $\cos\theta_{ik} = \hat x_i \cdot w_{y_i K + k} / \max(\lVert w_{y_i K + k}\rVert, \epsilon)$,
//! computed as the training step computes them (x̂ from the same
//! normalisation, the same dot-product kernel, the same cached weight norms).
//!
//! Only the K rows of the sample's own class are read: the rule needs no
//! other cosine, so the pass does N·K·D multiply-adds where a forward
//! product would do N·C·K·D, and it holds no N×(C·K) buffer, only the
//! N×K cosines it returns and one row of D per thread.

use crate::error::Result;
use crate::head::ArcFaceHead;
use crate::kernels::Dot;
use crate::memory::try_filled;
use crate::parallel::{for_blocks, sample_pass_blocks, RowSplit, Rows};
use crate::real::Real;

/// Writes `cos` (N×K, row `i` the cosines of sample `i` to its class's
/// sub-centres, widened to f64) from `features` (N×D) and `labels` (in
/// `0..C`, already checked). Samples are split into contiguous blocks over
/// threads; each sample's cosines are computed the same way in any block,
/// so the result does not depend on the thread count. The error of a
/// non-finite feature names the first such sample.
pub(super) fn own_class_cosines<T: Real>(
    head: &ArcFaceHead<T>,
    features: &[T],
    labels: &[i64],
    cos: &mut [f64],
) -> Result<()> {
    let cfg = head.config();
    let (k, d) = (cfg.num_subcenters, cfg.in_channels);
    let n = labels.len();
    let blocks = sample_pass_blocks(
        n.saturating_mul(k).saturating_mul(d),
        head.threads().count(),
    );
    let split = RowSplit::new(n, blocks);
    let (w, norms, arch) = (head.weight(), head.weight_norms(), crate::simd::arch());
    for_blocks(
        &split,
        Rows(cos, k),
        |b, cos| -> Result<()> {
            let mut unit = try_filled(d, T::ZERO, "cleaning row")?;
            for (j, i) in b.rows.clone().enumerate() {
                head.unit_row(&features[i * d..(i + 1) * d], i, &mut unit)?;
                let first = labels[i] as usize * k;
                for (s, out) in cos[j * k..(j + 1) * k].iter_mut().enumerate() {
                    let r = first + s;
                    let p = arch.dispatch(Dot {
                        a: &unit,
                        b: &w[r * d..(r + 1) * d],
                    });
                    *out = (p / norms[r]).to_f64();
                }
            }
            Ok(())
        },
        // the first block's error first: the lowest failing sample
        |a, b| a.and(b),
    )
}
