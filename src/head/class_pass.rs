//! The fused pass over the products, in class-major layout.
//!
//! The forward product is computed as $P^\top = W \hat X^\top$ ((C·K)×N,
//! row-major): faer runs that shape faster than $\hat X W^\top$ when N is
//! small, and it is the layout the weight-gradient product wants too. Row
//! `r` of the buffer holds sub-centre `r` for every sample, and the softmax
//! state of each sample (row maximum, sum of exponentials, loss terms) is a
//! vector over the batch. Five phases, each a function below; the three
//! class sweeps split the classes into the same blocks across threads
//! ([`crate::parallel`]), with partial maxima and sums merged in block order
//! (so a given thread count always gives the same bits):
//!
//! 1. [`margin_targets`](ArcFaceHead::margin_targets), per sample: the samples
//!    of each class, the target cosine (first arg-max sub-centre), the
//!    margin and its derivative (scalar; N of them);
//! 2. [`scaled_cosines`](ArcFaceHead::scaled_cosines), per class:
//!    $z = S \max_k P_{ck}/\lVert w_{ck}\rVert$ (arg-max kept), the target
//!    logits patched in, the running row maximum;
//! 3. [`exponentials`](ArcFaceHead::exponentials), per class:
//!    $e = \exp(z - m)$, $\sum e$, and the soft-target loss terms;
//! 4. [`sample_losses`](ArcFaceHead::sample_losses), per sample: the loss
//!    and the gradient's scalars;
//! 5. [`logit_gradient`](ArcFaceHead::logit_gradient), per class:
//!    $G' = (p\,a - V)\,S\lambda / \lVert w\rVert$, the target entries
//!    scaled by the margin derivative, given to the arg-max sub-centre only,
//!    written over the products: ready for $G'W$ and $G'^\top \hat X$.
//!
//! The per-block work of the class sweeps is in [`super::class_sweeps`].

use super::class_sweeps::{ClassTargets, Exponentials, LogitGradient, ScaledCosines};
use super::workspace::ClassPassScratch;
use super::{ArcFaceHead, Batch, Workspace};
use crate::config::{LossConfig, Reduction};
use crate::kernels::{MaxInto, VRow};
use crate::margin;
use crate::parallel::{class_pass_blocks, for_blocks, PerBlock, RowSplit, Rows};
use crate::real::Real;

/// What the pass produces.
pub(super) enum Mode<'a, 'b, T> {
    /// Logits without margin (`logits`, `predict`).
    Infer,
    /// Logits with the margin at each label (`logits_train`).
    Train(&'a [i64]),
    /// The loss, and with `backward` the gradient G' over the products.
    Loss {
        batch: &'a Batch<'b, T>,
        plan: &'a LossPlan<T>,
        backward: bool,
    },
}

/// The loss's constants for one batch.
pub(super) struct LossPlan<T> {
    /// `loss_weight` as T.
    lw: T,
    /// λ without the sample weight: `lw / N` (mean) or `lw`.
    lambda: T,
    /// Effective smoothing ε, 0 without smoothing.
    eps: T,
    smooth: bool,
}

impl<T: Real> LossPlan<T> {
    /// The constants of `loss` for a batch of `n` samples.
    pub(super) fn new(loss: &LossConfig, n: usize) -> Self {
        let lw = T::from_f64(loss.loss_weight);
        let lambda = match loss.reduction {
            Reduction::Mean => T::from_f64(loss.loss_weight / n as f64),
            Reduction::Sum | Reduction::None => lw,
        };
        let (eps, smooth) = match &loss.label_smooth {
            Some(ls) => (T::from_f64(ls.effective_eps()), true),
            None => (T::ZERO, false),
        };
        Self {
            lw,
            lambda,
            eps,
            smooth,
        }
    }
}

/// How the target weights V = class_weight ⊙ target vary over classes.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum TargetKind {
    /// Hard labels, no smoothing: V is zero off the target.
    Sparse,
    /// Hard labels with smoothing: V_c = cw_c·β off the target.
    Uniform,
    /// Soft targets: V_ic = cw_c·(α·t_ic + β).
    Soft,
}

/// Where a class's target weights V come from (see [`TargetKind`]).
#[derive(Clone, Copy)]
pub(super) struct TargetWeights<'a, T> {
    kind: TargetKind,
    cw: Option<&'a [T]>,
    soft: Option<&'a [T]>,
    alpha: T,
    beta: T,
    c: usize,
    /// The retired classes' flags, when any: their V is 0.
    retired: Option<&'a [bool]>,
}

impl<'a, T: Real> TargetWeights<'a, T> {
    /// The target weights of `batch` over `c` classes: with smoothing ε,
    /// $V_{ic} = w_c (\alpha T_{ic} + \beta)$ with $\alpha = 1 - \varepsilon$,
    /// $\beta = \varepsilon / C_a$ ($C_a$ the classes not retired, C when
    /// none is); without, $\alpha = 1$, $\beta = 0$. A retired class has
    /// $V = 0$.
    fn new(
        batch: &Batch<'a, T>,
        plan: &LossPlan<T>,
        cw: Option<&'a [T]>,
        c: usize,
        retired: Option<&'a [bool]>,
    ) -> Self {
        let active = match retired {
            Some(r) => c - r.iter().filter(|&&x| x).count(),
            None => c,
        };
        let (alpha, beta) = if plan.smooth {
            (T::ONE - plan.eps, plan.eps / T::from_f64(active as f64))
        } else {
            (T::ONE, T::ZERO)
        };
        Self {
            kind: match (batch.soft_targets.is_some(), plan.smooth) {
                (true, _) => TargetKind::Soft,
                (false, true) => TargetKind::Uniform,
                (false, false) => TargetKind::Sparse,
            },
            cw,
            soft: batch.soft_targets,
            alpha,
            beta,
            c,
            retired,
        }
    }

    /// The class weight of `cl` (1 without class weights, 0 if retired).
    fn cw(&self, cl: usize) -> T {
        if self.retired.is_some_and(|r| r[cl]) {
            return T::ZERO;
        }
        self.cw.map_or(T::ONE, |w| w[cl])
    }

    /// Whether class `cl` is retired.
    #[inline(always)]
    pub(super) fn is_retired(&self, cl: usize) -> bool {
        self.retired.is_some_and(|r| r[cl])
    }

    /// V of class `cl` for every sample; a row is built in `buf`.
    pub(super) fn row<'b>(&self, cl: usize, buf: &'b mut [T]) -> VRow<'b, T> {
        match self.kind {
            TargetKind::Sparse => VRow::Zero,
            TargetKind::Uniform => VRow::Uniform(self.cw(cl) * self.beta),
            TargetKind::Soft => {
                let (t, w) = (self.soft.unwrap_or(&[]), self.cw(cl));
                for (i, v) in buf.iter_mut().enumerate() {
                    *v = w * (self.alpha * t[i * self.c + cl] + self.beta);
                }
                VRow::Row(buf)
            }
        }
    }
}

/// The buffers the class sweeps cut into the same class blocks: the
/// products (K·N a class), the arg-max sub-centres (N a class, none for
/// K = 1), and per block its partial results and scratch rows (2N each).
type Sweep<'a, T> = (Rows<'a, T>, Rows<'a, T>, PerBlock<'a, T>, PerBlock<'a, T>);

/// [`Sweep`] over the first `n` samples' products.
fn sweep<'a, T>(
    products: &'a mut [T],
    subcentre: &'a mut [T],
    partials: &'a mut [T],
    rows: &'a mut [T],
    (c, k, n): (usize, usize, usize),
) -> Sweep<'a, T> {
    let subcentre_width = if k > 1 { n } else { 0 };
    (
        Rows(&mut products[..c * k * n], k * n),
        Rows(&mut subcentre[..c * subcentre_width], subcentre_width),
        PerBlock(partials, 2 * n),
        PerBlock(rows, 2 * n),
    )
}

impl<T: Real> ArcFaceHead<T> {
    /// Runs the pass over `ws.products` (Pᵀ of the first `n` samples). For
    /// `Infer` and `Train` the logits of class `c` are left in row `c·K`;
    /// for `Loss` the per-sample losses go to the workspace's results, and
    /// with `backward` the products are replaced by G'ᵀ.
    pub(super) fn class_pass(&self, ws: &mut Workspace<T>, n: usize, mode: Mode<'_, '_, T>) {
        let (c, _, ck, _) = self.dims();
        let labels = match &mode {
            Mode::Infer => None,
            Mode::Train(l) => Some(*l),
            Mode::Loss { batch, .. } => Some(batch.labels),
        };
        if let Some(labels) = labels {
            self.margin_targets(ws, n, labels);
        }
        let threads = self.threads.count();
        let split = RowSplit::new(c, class_pass_blocks(n * ck, threads, ws.shape.slots));
        self.scaled_cosines(ws, n, &split, labels.is_some());
        let Mode::Loss {
            batch,
            plan,
            backward,
        } = mode
        else {
            return;
        };
        let retired = self.retired_mask();
        let targets = TargetWeights::new(batch, plan, self.class_weight.as_deref(), c, retired);
        self.exponentials(ws, n, &split, &targets);
        self.sample_losses(ws, batch, plan, &targets, backward);
        if backward {
            self.logit_gradient(ws, n, &split, &targets);
        }
    }

    /// Phase 1: the samples of each class (a counting sort of the labels),
    /// and each sample's target logit with the margin and its derivative.
    fn margin_targets(&self, ws: &mut Workspace<T>, n: usize, labels: &[i64]) {
        let (c, k, _, _) = self.dims();
        let s = T::from_f64(self.cfg.scale);
        let ClassPassScratch {
            by_class, samples, ..
        } = &mut ws.class_pass;
        let start = &mut by_class.start[..=c];
        start.fill(0);
        for &l in labels {
            start[l as usize + 1] += 1;
        }
        for cl in 0..c {
            start[cl + 1] += start[cl];
        }
        let cursor = &mut by_class.cursor[..c];
        cursor.copy_from_slice(&start[..c]);
        let (prod, norm) = (&ws.products[..], &self.norms.norm[..]);
        for (i, &l) in labels.iter().enumerate() {
            let y = l as usize;
            by_class.samples[cursor[y] as usize] = i as u32;
            cursor[y] += 1;
            let mut best = prod[y * k * n + i] / norm[y * k];
            for j in 1..k {
                let v = prod[(y * k + j) * n + i] / norm[y * k + j];
                if v > best {
                    best = v;
                }
            }
            let (phi, d, _) = margin::apply(
                best,
                self.target_margin(y),
                self.cfg.easy_margin,
                self.cfg.margin_grad,
            );
            samples.target_logit[i] = s * phi;
            samples.margin_grad[i] = d;
        }
    }

    /// Phase 2: the scaled cosines (sub-centre maximum, arg-max kept), the
    /// target logits patched in (`with_targets`), and each sample's row
    /// maximum in `row_max`.
    fn scaled_cosines(
        &self,
        ws: &mut Workspace<T>,
        n: usize,
        split: &RowSplit,
        with_targets: bool,
    ) {
        let (c, k, _, _) = self.dims();
        let (arch, s) = (self.arch, T::from_f64(self.cfg.scale));
        let (norm, inv) = (&self.norms.norm[..], &self.norms.inv[..]);
        let retired = self.retired_mask();
        let cp = &mut ws.class_pass;
        let targets = with_targets.then_some(ClassTargets {
            start: &cp.by_class.start[..],
            list: &cp.by_class.samples[..],
            val: &cp.samples.target_logit[..n],
        });
        for_blocks(
            split,
            sweep(
                &mut ws.products,
                &mut cp.subcentre,
                &mut cp.partials,
                &mut cp.rows,
                (c, k, n),
            ),
            |b, (rows, subcentre, part, scr)| {
                arch.dispatch(ScaledCosines {
                    rows,
                    subcentre,
                    mpart: &mut part[..n],
                    scr,
                    c0: b.rows.start,
                    k,
                    n,
                    norm,
                    inv,
                    s,
                    targets,
                    retired,
                })
            },
            |(), ()| (),
        );
        let m = &mut cp.samples.row_max[..n];
        m.copy_from_slice(&cp.partials[..n]);
        for p in cp.partials[..split.blocks() * 2 * n]
            .chunks_exact(2 * n)
            .skip(1)
        {
            arch.dispatch(MaxInto {
                m: &mut *m,
                x: &p[..n],
            });
        }
    }

    /// Phase 3: the exponentials $e^{z - m}$ over the products, their sums
    /// in `exp_sum`, and the soft loss terms in `target_gap`.
    fn exponentials(
        &self,
        ws: &mut Workspace<T>,
        n: usize,
        split: &RowSplit,
        targets: &TargetWeights<'_, T>,
    ) {
        let (c, k, _, _) = self.dims();
        let arch = self.arch;
        let cp = &mut ws.class_pass;
        let m = &cp.samples.row_max[..n];
        for_blocks(
            split,
            sweep(
                &mut ws.products,
                &mut cp.subcentre,
                &mut cp.partials,
                &mut cp.rows,
                (c, k, n),
            ),
            |b, (rows, _subcentre, part, scr)| {
                let (spart, gpart) = part.split_at_mut(n);
                arch.dispatch(Exponentials {
                    rows,
                    spart,
                    gpart: &mut gpart[..n],
                    vbuf: &mut scr[..n],
                    c0: b.rows.start,
                    k,
                    n,
                    m,
                    v: *targets,
                })
            },
            |(), ()| (),
        );
        let (sum, gap) = (
            &mut cp.samples.exp_sum[..n],
            &mut cp.samples.target_gap[..n],
        );
        sum.copy_from_slice(&cp.partials[..n]);
        gap.copy_from_slice(&cp.partials[n..2 * n]);
        for p in cp.partials[..split.blocks() * 2 * n]
            .chunks_exact(2 * n)
            .skip(1)
        {
            for i in 0..n {
                sum[i] += p[i];
                gap[i] += p[n + i];
            }
        }
    }

    /// Phase 4, per sample: the loss $L_i = w_{loss} s_i (\text{gap} + a \ln \sum e)$
    /// into the results, and with `backward` the gradient's scalars (the
    /// softmax coefficient, the scale and the target entry).
    fn sample_losses(
        &self,
        ws: &mut Workspace<T>,
        batch: &Batch<'_, T>,
        plan: &LossPlan<T>,
        v: &TargetWeights<'_, T>,
        backward: bool,
    ) {
        let (c, k, _, _) = self.dims();
        let n = batch.labels.len();
        let s = T::from_f64(self.cfg.scale);
        let (alpha, beta) = (v.alpha, v.beta);
        let sum_cw_beta = (0..c).fold(T::ZERO, |a, cl| a + v.cw(cl) * beta);
        let st = &mut ws.class_pass.samples;
        for (i, &label) in batch.labels.iter().enumerate() {
            let y = label as usize;
            let (mi, si, zti) = (st.row_max[i], st.exp_sum[i], st.target_logit[i]);
            let (vt, a, gap) = match v.kind {
                TargetKind::Sparse => (v.cw(y), v.cw(y), v.cw(y) * (mi - zti)),
                TargetKind::Uniform => {
                    let extra = v.cw(y) * alpha;
                    (
                        v.cw(y) * (alpha + beta),
                        sum_cw_beta + extra,
                        st.target_gap[i] + extra * (mi - zti),
                    )
                }
                TargetKind::Soft => {
                    let t = &v.soft.unwrap_or(&[])[i * c..(i + 1) * c];
                    let a = t.iter().enumerate().fold(T::ZERO, |acc, (cl, &tv)| {
                        acc + v.cw(cl) * (alpha * tv + beta)
                    });
                    (v.cw(y) * (alpha * t[y] + beta), a, st.target_gap[i])
                }
            };
            let sw = batch.sample_weights.map_or(T::ONE, |w| w[i]);
            ws.results.sample_loss[i] = plan.lw * sw * (gap + a * si.ln_());
            if backward {
                let q = s * plan.lambda * sw;
                let pc = q * a / si;
                let et = ws.products[y * k * n + i];
                st.prob_coef[i] = pc;
                st.grad_scale[i] = q;
                st.target_grad[i] = (pc * et - q * vt) * st.margin_grad[i];
            }
        }
    }

    /// Phase 5: G' over the products, each class's gradient given to its
    /// arg-max sub-centre.
    fn logit_gradient(
        &self,
        ws: &mut Workspace<T>,
        n: usize,
        split: &RowSplit,
        targets: &TargetWeights<'_, T>,
    ) {
        let (c, k, _, _) = self.dims();
        let (arch, inv) = (self.arch, &self.norms.inv[..]);
        let cp = &mut ws.class_pass;
        let at_targets = ClassTargets {
            start: &cp.by_class.start[..],
            list: &cp.by_class.samples[..],
            val: &cp.samples.target_grad[..n],
        };
        let (pc, q) = (&cp.samples.prob_coef[..n], &cp.samples.grad_scale[..n]);
        for_blocks(
            split,
            sweep(
                &mut ws.products,
                &mut cp.subcentre,
                &mut cp.partials,
                &mut cp.rows,
                (c, k, n),
            ),
            |b, (rows, subcentre, _part, scr)| {
                let (g, vbuf) = scr.split_at_mut(n);
                arch.dispatch(LogitGradient {
                    rows,
                    subcentre: &*subcentre,
                    g,
                    vbuf: &mut vbuf[..n],
                    c0: b.rows.start,
                    k,
                    n,
                    pc,
                    q,
                    inv,
                    targets: at_targets,
                    v: *targets,
                })
            },
            |(), ()| (),
        );
    }
}
