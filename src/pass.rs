//! The fused pass over the products, in class-major layout.
//!
//! The forward product is computed as $P^\top = W \hat X^\top$ ((C·K)×N,
//! row-major): faer runs that shape 1.3–2.5× faster than $\hat X W^\top$ when
//! N is small, and it is the layout the weight-gradient product wants too.
//! Row `r` of the buffer holds sub-centre `r` for every sample, and the
//! softmax state of each sample (row maximum, sum of exponentials, loss terms)
//! is a vector over the batch. Five phases; 1, 2 and 4 sweep the rows split
//! into class blocks across threads, with partial maxima and sums merged in
//! block order (so a given thread count always gives the same bits):
//!
//! 0. per sample: the target cosine (first arg-max sub-centre), the margin
//!    and its derivative (scalar; N of them);
//! 1. per class: $z = S \max_k P_{ck}/\lVert w_{ck}\rVert$ (arg-max kept),
//!    the target logits patched in, the running row maximum;
//! 2. per class: $e = \exp(z - m)$, $\sum e$, and the soft-target loss terms;
//! 3. per sample: the loss and the gradient's scalars;
//! 4. per class: $G' = (p\,a - V)\,S\lambda / \lVert w\rVert$, the target
//!    entries scaled by the margin derivative, given to the arg-max
//!    sub-centre only, written over the products: ready for $G'W$ and
//!    $G'^\top \hat X$.

use super::{ArcFaceHead, Batch, LossPlan, Workspace};
use crate::kernels::{ColGrad, ExpSumInto, Expand, GapInto, MaxInto, ScaleDiv, SubcentreMax, VRow};
use crate::margin;
use crate::real::Real;
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// The class pass splits its class blocks over threads only from this many
/// products: each of its phases is one parallel dispatch, which cost more
/// than it saved below. Measured on two threads, split against one thread:
/// (256, 512, 1000), 2.6·10⁵ products, 0.19 against 0.11 ms; (512, 512,
/// 1000) 0.34 against 0.24 ms; (1024, 512, 1000), 10⁶, 0.55 against 0.53 ms;
/// (192, 512, 10⁴) 0.77 against 1.13 ms; (256, 512, 10⁴) 0.96 against 1.57.
const PASS_PAR_MIN_ELEMS: usize = 1 << 20;

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

/// How the target weights V = class_weight ⊙ target vary over classes.
#[derive(Clone, Copy, PartialEq)]
enum VMode {
    /// Hard labels, no smoothing: V is zero off the target.
    Sparse,
    /// Hard labels with smoothing: V_c = cw_c·β off the target.
    Uniform,
    /// Soft targets: V_ic = cw_c·(α·t_ic + β).
    Soft,
}

/// Where a class's target weights V come from (see [`VMode`]).
#[derive(Clone, Copy)]
struct VSource<'a, T> {
    mode: VMode,
    cw: Option<&'a [T]>,
    soft: Option<&'a [T]>,
    alpha: T,
    beta: T,
    c: usize,
}

impl<'a, T: Real> VSource<'a, T> {
    fn cw(&self, cl: usize) -> T {
        self.cw.map_or(T::ONE, |w| w[cl])
    }
    /// V of class `cl` for every sample; a row is built in `buf`.
    fn row<'b>(&self, cl: usize, buf: &'b mut [T]) -> VRow<'b, T> {
        match self.mode {
            VMode::Sparse => VRow::Zero,
            VMode::Uniform => VRow::Uniform(self.cw(cl) * self.beta),
            VMode::Soft => {
                let (t, w) = (self.soft.unwrap_or(&[]), self.cw(cl));
                for (i, v) in buf.iter_mut().enumerate() {
                    *v = w * (self.alpha * t[i * self.c + cl] + self.beta);
                }
                VRow::Row(buf)
            }
        }
    }
}

/// The samples of each class and their target logits, for patching.
#[derive(Clone, Copy)]
struct TargetIdx<'a, T> {
    start: &'a [u32],
    list: &'a [u32],
    val: &'a [T],
}

impl<T: Real> TargetIdx<'_, T> {
    #[inline(always)]
    fn of(&self, cl: usize) -> &[u32] {
        &self.list[self.start[cl] as usize..self.start[cl + 1] as usize]
    }
}

/// Phase 1 over a block of classes (one dispatch for the block).
struct Phase1<'a, T> {
    rows: &'a mut [T],
    kid: &'a mut [T],
    mpart: &'a mut [T],
    scr: &'a mut [T],
    c0: usize,
    k: usize,
    n: usize,
    norm: &'a [T],
    inv: &'a [T],
    s: T,
    targets: Option<TargetIdx<'a, T>>,
}

impl<T: Real> WithSimd for Phase1<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, sd: S) {
        let (k, n) = (self.k, self.n);
        self.mpart.fill(T::from_f64(f64::NEG_INFINITY));
        for (j, block) in self.rows.chunks_exact_mut(k * n).enumerate() {
            let cl = self.c0 + j;
            let mine = self.targets.as_ref().map_or(&[][..], |t| t.of(cl));
            if k == 1 && mine.is_empty() {
                // no target in this class: scale and take the max in one sweep
                ScaleDiv {
                    x: &mut *block,
                    n: self.norm[cl],
                    rcp: self.inv[cl],
                    k: self.s,
                    m: Some(&mut *self.mpart),
                }
                .with_simd(sd);
                continue;
            }
            if k == 1 {
                ScaleDiv {
                    x: &mut *block,
                    n: self.norm[cl],
                    rcp: self.inv[cl],
                    k: self.s,
                    m: None,
                }
                .with_simd(sd);
            } else {
                SubcentreMax {
                    rows: &*block,
                    norms: &self.norm[cl * k..(cl + 1) * k],
                    rcps: &self.inv[cl * k..(cl + 1) * k],
                    k: self.s,
                    out: &mut self.scr[..n],
                    kidx: &mut self.kid[j * n..(j + 1) * n],
                }
                .with_simd(sd);
                block[..n].copy_from_slice(&self.scr[..n]);
            }
            if let Some(t) = &self.targets {
                for &i in mine {
                    block[i as usize] = t.val[i as usize];
                }
            }
            MaxInto {
                m: &mut *self.mpart,
                x: &block[..n],
            }
            .with_simd(sd);
        }
    }
}

/// Phase 2 over a block of classes.
struct Phase2<'a, T> {
    rows: &'a mut [T],
    spart: &'a mut [T],
    gpart: &'a mut [T],
    vbuf: &'a mut [T],
    c0: usize,
    k: usize,
    n: usize,
    m: &'a [T],
    v: VSource<'a, T>,
}

impl<T: Real> WithSimd for Phase2<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, sd: S) {
        let (k, n) = (self.k, self.n);
        self.spart.fill(T::ZERO);
        self.gpart.fill(T::ZERO);
        for (j, block) in self.rows.chunks_exact_mut(k * n).enumerate() {
            let z = &mut block[..n];
            let v = self.v.row(self.c0 + j, &mut *self.vbuf);
            if !matches!(v, VRow::Zero) {
                GapInto {
                    gap: &mut *self.gpart,
                    v,
                    m: self.m,
                    z: &*z,
                }
                .with_simd(sd);
            }
            ExpSumInto {
                z,
                m: self.m,
                sum: &mut *self.spart,
            }
            .with_simd(sd);
        }
    }
}

/// Phase 4 over a block of classes.
struct Phase4<'a, T> {
    rows: &'a mut [T],
    kid: &'a [T],
    g: &'a mut [T],
    vbuf: &'a mut [T],
    c0: usize,
    k: usize,
    n: usize,
    pc: &'a [T],
    q: &'a [T],
    inv: &'a [T],
    targets: TargetIdx<'a, T>,
    v: VSource<'a, T>,
}

impl<T: Real> WithSimd for Phase4<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, sd: S) {
        let (k, n) = (self.k, self.n);
        for (j, block) in self.rows.chunks_exact_mut(k * n).enumerate() {
            let cl = self.c0 + j;
            let v = self.v.row(cl, &mut *self.vbuf);
            if k == 1 {
                let w = self.inv[cl];
                ColGrad {
                    e: &mut block[..n],
                    pc: self.pc,
                    q: self.q,
                    v,
                    w,
                }
                .with_simd(sd);
                for &i in self.targets.of(cl) {
                    block[i as usize] = self.targets.val[i as usize] * w;
                }
            } else {
                let g = &mut self.g[..n];
                g.copy_from_slice(&block[..n]);
                ColGrad {
                    e: &mut *g,
                    pc: self.pc,
                    q: self.q,
                    v,
                    w: T::ONE,
                }
                .with_simd(sd);
                for &i in self.targets.of(cl) {
                    g[i as usize] = self.targets.val[i as usize];
                }
                let kd = &self.kid[j * n..(j + 1) * n];
                for (jj, out) in block.chunks_exact_mut(n).enumerate() {
                    let w = self.inv[cl * k + jj];
                    Expand {
                        out,
                        g: &*g,
                        kidx: kd,
                        j: T::from_f64(jj as f64),
                        w,
                    }
                    .with_simd(sd);
                }
            }
        }
    }
}

/// Runs `f(chunk, rows, kidx, partial, scratch)` over class blocks, in
/// parallel when `slots > 1`.
#[allow(clippy::too_many_arguments)]
fn for_blocks<T: Real>(
    slots: usize,
    rows: &mut [T],
    row_chunk: usize,
    kidx: &mut [T],
    kid_chunk: usize,
    part: &mut [T],
    scr: &mut [T],
    pw: usize,
    f: impl Fn(usize, &mut [T], &mut [T], &mut [T], &mut [T]) + Sync,
) {
    if slots > 1 {
        rows.par_chunks_mut(row_chunk)
            .zip(kidx.par_chunks_mut(kid_chunk))
            .zip(part.par_chunks_mut(pw))
            .zip(scr.par_chunks_mut(pw))
            .enumerate()
            .for_each(|(ch, (((r, kd), p), sc))| f(ch, r, kd, p, sc));
    } else {
        f(0, rows, kidx, &mut part[..pw], &mut scr[..pw]);
    }
}

impl<T: Real> ArcFaceHead<T> {
    /// Runs the pass over `ws.prod` (Pᵀ of the first `n` samples). For
    /// `Infer` and `Train` the logits of class `c` are left in row `c·K`;
    /// for `Loss` the per-sample losses go to `ws.sample_loss`, and with
    /// `backward` the products are replaced by G'ᵀ.
    pub(super) fn class_pass(&self, ws: &mut Workspace<T>, n: usize, mode: Mode<'_, '_, T>) {
        let (c, k, ck, _) = self.dims();
        let s = T::from_f64(self.cfg.scale);
        let arch = self.arch;
        let threads = self.threads.count();
        let labels = match &mode {
            Mode::Infer => None,
            Mode::Train(l) => Some(*l),
            Mode::Loss { batch, .. } => Some(batch.labels),
        };

        // phase 0: the samples of each class (counting sort), target margins
        if let Some(labels) = labels {
            let start = &mut ws.cls_start[..=c];
            start.fill(0);
            for &l in labels {
                start[l as usize + 1] += 1;
            }
            for cl in 0..c {
                start[cl + 1] += start[cl];
            }
            let cursor = &mut ws.cls_cursor[..c];
            cursor.copy_from_slice(&start[..c]);
            for (i, &l) in labels.iter().enumerate() {
                let y = l as usize;
                ws.cls_list[cursor[y] as usize] = i as u32;
                cursor[y] += 1;
                let mut best = ws.prod[y * k * n + i] / self.norm[y * k];
                for j in 1..k {
                    let v = ws.prod[(y * k + j) * n + i] / self.norm[y * k + j];
                    if v > best {
                        best = v;
                    }
                }
                let (phi, d, _) = margin::apply(
                    best,
                    &self.consts[y],
                    self.cfg.easy_margin,
                    self.cfg.margin_grad,
                );
                ws.zt[i] = s * phi;
                ws.dm[i] = d;
            }
        }

        let slots = if threads > 1 && n * ck >= PASS_PAR_MIN_ELEMS {
            threads.min(ws.slots).min(c)
        } else {
            1
        };
        let cpc = c.div_ceil(slots);
        let pw = 2 * n;
        let (row_chunk, kid_chunk) = (cpc * k * n, if k > 1 { cpc * n } else { 1 });
        let kid_len = if k > 1 { c * n } else { slots };
        // every phase sweeps the same class blocks of the same buffers
        macro_rules! run_blocks {
            ($phase:expr) => {
                for_blocks(
                    slots,
                    &mut ws.prod[..ck * n],
                    row_chunk,
                    &mut ws.kidx[..kid_len],
                    kid_chunk,
                    &mut ws.partial[..slots * pw],
                    &mut ws.scratch[..slots * pw],
                    pw,
                    $phase,
                )
            };
        }
        let (norm, inv) = (&self.norm[..], &self.inv_norm[..]);

        // phase 1: scaled cosines (sub-centre max), target logits, row max
        {
            let targets = labels.map(|_| TargetIdx {
                start: &ws.cls_start[..],
                list: &ws.cls_list[..],
                val: &ws.zt[..n],
            });
            let phase1 =
                |ch: usize, rows: &mut [T], kid: &mut [T], part: &mut [T], scr: &mut [T]| {
                    arch.dispatch(Phase1 {
                        rows,
                        kid,
                        mpart: &mut part[..n],
                        scr,
                        c0: ch * cpc,
                        k,
                        n,
                        norm,
                        inv,
                        s,
                        targets,
                    });
                };
            run_blocks!(phase1);
        }
        let m = &mut ws.m[..n];
        m.copy_from_slice(&ws.partial[..n]);
        for p in ws.partial[..slots * pw].chunks_exact(pw).skip(1) {
            arch.dispatch(MaxInto {
                m: &mut *m,
                x: &p[..n],
            });
        }

        let Mode::Loss {
            batch,
            plan,
            backward,
        } = mode
        else {
            return;
        };
        let labels = batch.labels;
        let soft = batch.soft_targets;
        let cw = self.class_weight.as_deref();
        let (alpha, beta) = if plan.smooth {
            (T::ONE - plan.eps, plan.eps / T::from_f64(c as f64))
        } else {
            (T::ONE, T::ZERO)
        };
        let vmode = match (soft.is_some(), plan.smooth) {
            (true, _) => VMode::Soft,
            (false, true) => VMode::Uniform,
            (false, false) => VMode::Sparse,
        };
        let cw_of = |cl: usize| cw.map_or(T::ONE, |w| w[cl]);
        // V of class `cl` for every sample, built in `buf` when it varies
        let vsrc = VSource {
            mode: vmode,
            cw,
            soft,
            alpha,
            beta,
            c,
        };
        // phase 2: exponentials, their sums, the soft loss terms
        {
            let m = &ws.m[..n];
            let phase2 =
                |ch: usize, rows: &mut [T], _kid: &mut [T], part: &mut [T], scr: &mut [T]| {
                    let (spart, gpart) = part.split_at_mut(n);
                    arch.dispatch(Phase2 {
                        rows,
                        spart,
                        gpart: &mut gpart[..n],
                        vbuf: &mut scr[..n],
                        c0: ch * cpc,
                        k,
                        n,
                        m,
                        v: vsrc,
                    });
                };
            run_blocks!(phase2);
        }
        {
            let (sum, gap) = (&mut ws.s[..n], &mut ws.gap[..n]);
            sum.copy_from_slice(&ws.partial[..n]);
            gap.copy_from_slice(&ws.partial[n..pw]);
            for p in ws.partial[..slots * pw].chunks_exact(pw).skip(1) {
                for i in 0..n {
                    sum[i] += p[i];
                    gap[i] += p[n + i];
                }
            }
        }

        // phase 3: per sample, the loss and the gradient's scalars
        let sum_cw_beta = (0..c).fold(T::ZERO, |a, cl| a + cw_of(cl) * beta);
        for i in 0..n {
            let y = labels[i] as usize;
            let (mi, si, zti) = (ws.m[i], ws.s[i], ws.zt[i]);
            let (vt, a, gap) = match vmode {
                VMode::Sparse => (cw_of(y), cw_of(y), cw_of(y) * (mi - zti)),
                VMode::Uniform => {
                    let extra = cw_of(y) * alpha;
                    (
                        cw_of(y) * (alpha + beta),
                        sum_cw_beta + extra,
                        ws.gap[i] + extra * (mi - zti),
                    )
                }
                VMode::Soft => {
                    let t = &soft.unwrap_or(&[])[i * c..(i + 1) * c];
                    let a = t.iter().enumerate().fold(T::ZERO, |acc, (cl, &tv)| {
                        acc + cw_of(cl) * (alpha * tv + beta)
                    });
                    (cw_of(y) * (alpha * t[y] + beta), a, ws.gap[i])
                }
            };
            let sw = batch.sample_weights.map_or(T::ONE, |w| w[i]);
            ws.sample_loss[i] = plan.lw * sw * (gap + a * si.ln_());
            if backward {
                let q = s * plan.lambda * sw;
                let pc = q * a / si;
                let et = ws.prod[y * k * n + i];
                ws.pc[i] = pc;
                ws.q[i] = q;
                ws.gt[i] = (pc * et - q * vt) * ws.dm[i];
            }
        }
        if !backward {
            return;
        }

        // phase 4: G' over the products, to the arg-max sub-centres
        let targets = TargetIdx {
            start: &ws.cls_start[..],
            list: &ws.cls_list[..],
            val: &ws.gt[..n],
        };
        let (pc, q) = (&ws.pc[..n], &ws.q[..n]);
        let phase4 = |ch: usize, rows: &mut [T], kid: &mut [T], _part: &mut [T], scr: &mut [T]| {
            let (g, vbuf) = scr.split_at_mut(n);
            arch.dispatch(Phase4 {
                rows,
                kid: &*kid,
                g,
                vbuf: &mut vbuf[..n],
                c0: ch * cpc,
                k,
                n,
                pc,
                q,
                inv,
                targets,
                v: vsrc,
            });
        };
        run_blocks!(phase4);
    }
}
