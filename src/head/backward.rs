//! The backward through the products, from G' (left over the products by
//! the class pass): $\partial \hat X = G' W$ into the feature gradient and
//! $\partial W = G'^\top \hat X$ through each weight row's normalisation
//! Jacobian. Two strategies, chosen by batch size: three faer products for
//! large batches, one fused pass over W for small ones.

use super::{ArcFaceHead, Workspace};
use crate::gemm;
use crate::kernels::{small_backward_scratch, ProjectRows, SmallBackward};
use crate::parallel::{for_blocks, overlap_backward, row_pass_blocks, PerBlock, RowSplit, Rows};
use crate::real::Real;

impl<T: Real> ArcFaceHead<T> {
    /// Writes ∂L/∂x̂ (before the features' Jacobian) and ∂L/∂W; returns the
    /// weight rows' finiteness probe (0 unless a value overflowed).
    pub(super) fn backward(&self, ws: &mut Workspace<T>, n: usize) -> T {
        if Self::is_small_batch(n) {
            self.backward_small(ws, n)
        } else {
            self.backward_products(ws, n, self.threads.count())
        }
    }

    /// Large batches: ∂L/∂x̂ = G'W and G'ᵀX̂ through faer, then the weight
    /// rows' normalisation Jacobian in one pass over W and ∂W.
    fn backward_products(&self, ws: &mut Workspace<T>, n: usize, threads: usize) -> T {
        let (_, _, ck, d) = self.dims();
        let gt = &ws.products[..ck * n];
        let xn = &ws.features.unit[..n * d];
        let (w, proj) = (&self.weight[..], &self.norms.proj[..]);
        let arch = self.arch;
        let dx = |gf: &mut [T], part: &mut [T], t: usize| {
            gemm::gt_w(gf, gt, w, part, n, d, ck, t);
        };
        // ∂W = G'ᵀX̂, then each row's normalisation Jacobian
        let dw = |gw: &mut [T], t: usize| -> T {
            gemm::g_x(gw, gt, xn, n, d, ck, t);
            let split = RowSplit::new(ck, row_pass_blocks(ck * d, t));
            for_blocks(
                &split,
                Rows(gw, d),
                |b, g| {
                    arch.dispatch(ProjectRows {
                        g,
                        v: &w[b.rows.start * d..b.rows.end * d],
                        d,
                        a: None,
                        c: &proj[b.rows],
                    })
                },
                |x, y| x + y,
            )
        };
        let (gf, part, gw) = (
            &mut ws.results.grad_features[..n * d],
            &mut ws.backward.dx_partial[..],
            &mut ws.results.grad_weight[..],
        );
        let flops = 2.0 * (n * d * ck) as f64;
        if overlap_backward(flops, gemm::blocks::<T>(n, d, ck, threads), threads) {
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

    /// Small batches (N ≤ [`super::SMALL_BATCH`]) are bound by streaming W, so the
    /// whole backward is one pass over the weight rows: for row r, with
    /// $g_i = G'_{ir}$, $\partial W_r = \sum_i g_i \hat x_i$ projected against
    /// $w_r$, and $\partial \hat X_i \mathrel{+}= g_i w_r$ into per-block
    /// accumulators summed in block order (deterministic per thread count).
    /// W is read once and ∂W written once, instead of twice and three times.
    fn backward_small(&self, ws: &mut Workspace<T>, n: usize) -> T {
        let (_, _, ck, d) = self.dims();
        let split = self.small_batch_split(ws.shape.slots);
        let arch = self.arch;
        let prod = &ws.products[..n * ck];
        let xn = &ws.features.unit[..n * d];
        let (w, proj) = (&self.weight[..], &self.norms.proj[..]);
        let (nd, per) = (n * d, small_backward_scratch(n, d));
        let acc = &mut ws.backward.small_acc[..split.blocks() * nd];
        let probe = for_blocks(
            &split,
            (
                Rows(&mut ws.results.grad_weight[..], d),
                PerBlock(&mut *acc, nd),
                PerBlock(&mut ws.backward.small_rows[..], per),
            ),
            |b, (gw, acc, scr)| {
                acc.fill(T::ZERO);
                arch.dispatch(SmallBackward {
                    w: &w[b.rows.start * d..b.rows.end * d],
                    proj: &proj[b.rows.clone()],
                    prod,
                    r0: b.rows.start,
                    xs: xn,
                    d,
                    n,
                    gw,
                    acc,
                    scr,
                })
            },
            |x, y| x + y,
        );
        let gf = &mut ws.results.grad_features[..nd];
        gf.copy_from_slice(&acc[..nd]);
        for part in acc[nd..].chunks_exact(nd) {
            for (a, b) in gf.iter_mut().zip(part) {
                *a += *b;
            }
        }
        probe
    }
}
