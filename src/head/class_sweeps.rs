//! The per-block work of the class pass's three class sweeps (see
//! [`super::class_pass`]): each struct runs over one block of classes in one
//! SIMD dispatch.

use super::class_pass::TargetWeights;
use crate::kernels::{ColGrad, ExpSumInto, Expand, GapInto, MaxInto, ScaleDiv, SubcentreMax, VRow};
use crate::real::Real;
use pulp::{Simd, WithSimd};

/// The samples of each class and their target logits, for patching.
#[derive(Clone, Copy)]
pub(super) struct ClassTargets<'a, T> {
    /// Offsets into `list`, C + 1.
    pub(super) start: &'a [u32],
    /// Sample indices grouped by class.
    pub(super) list: &'a [u32],
    /// The value to patch in at each sample's target.
    pub(super) val: &'a [T],
}

impl<T: Real> ClassTargets<'_, T> {
    #[inline(always)]
    fn of(&self, cl: usize) -> &[u32] {
        &self.list[self.start[cl] as usize..self.start[cl + 1] as usize]
    }
}

/// The scaled cosines of a block of classes (one dispatch for the block):
/// $z = S \max_k P_{ck}/\lVert w_{ck}\rVert$, the arg-max sub-centre, the
/// target logits patched in, and the block's row maxima in `mpart`.
pub(super) struct ScaledCosines<'a, T> {
    /// The block's products, K rows of N per class; row c·K gets the logits.
    pub(super) rows: &'a mut [T],
    /// The block's arg-max sub-centres, N per class (K > 1).
    pub(super) subcentre: &'a mut [T],
    /// The block's row maxima, N.
    pub(super) mpart: &'a mut [T],
    /// Scratch, at least N.
    pub(super) scr: &'a mut [T],
    /// The block's first class.
    pub(super) c0: usize,
    /// K.
    pub(super) k: usize,
    /// N.
    pub(super) n: usize,
    /// max(‖w_r‖, eps) of every weight row.
    pub(super) norm: &'a [T],
    /// 1 / max(‖w_r‖, eps) of every weight row.
    pub(super) inv: &'a [T],
    /// The scale S.
    pub(super) s: T,
    /// The target logits to patch in (training modes).
    pub(super) targets: Option<ClassTargets<'a, T>>,
    /// The retired classes' flags, when any: their logits are −∞.
    pub(super) retired: Option<&'a [bool]>,
}

impl<T: Real> WithSimd for ScaledCosines<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, sd: S) {
        let (k, n) = (self.k, self.n);
        self.mpart.fill(T::from_f64(f64::NEG_INFINITY));
        for (j, block) in self.rows.chunks_exact_mut(k * n).enumerate() {
            let cl = self.c0 + j;
            if self.retired.is_some_and(|r| r[cl]) {
                // masked out: no label names it, so no target to patch
                block[..n].fill(T::from_f64(f64::NEG_INFINITY));
                continue;
            }
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
                    kidx: &mut self.subcentre[j * n..(j + 1) * n],
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

/// The exponentials of a block of classes: $e = \exp(z - m)$ over the
/// logits, the block's sums of $e$ in `spart` and of $V (m - z)$ in `gpart`.
pub(super) struct Exponentials<'a, T> {
    /// The block's products, K rows of N per class; row c·K holds the logits.
    pub(super) rows: &'a mut [T],
    /// The block's sums of exponentials, N.
    pub(super) spart: &'a mut [T],
    /// The block's sums of V·(m − z), N.
    pub(super) gpart: &'a mut [T],
    /// Scratch for a row of V, N.
    pub(super) vbuf: &'a mut [T],
    /// The block's first class.
    pub(super) c0: usize,
    /// K.
    pub(super) k: usize,
    /// N.
    pub(super) n: usize,
    /// The row maxima, N.
    pub(super) m: &'a [T],
    /// The target weights V.
    pub(super) v: TargetWeights<'a, T>,
}

impl<T: Real> WithSimd for Exponentials<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, sd: S) {
        let (k, n) = (self.k, self.n);
        self.spart.fill(T::ZERO);
        self.gpart.fill(T::ZERO);
        for (j, block) in self.rows.chunks_exact_mut(k * n).enumerate() {
            let z = &mut block[..n];
            if self.v.is_retired(self.c0 + j) {
                // e^{−∞} = 0 exactly (the vector exp clamps), no target term
                z.fill(T::ZERO);
                continue;
            }
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

/// The gradient G' of a block of classes over its products: $(p\,a - V)\,q$
/// divided by the row norm, the target entries patched in, each class's
/// gradient given to its arg-max sub-centre (zero for the others).
pub(super) struct LogitGradient<'a, T> {
    /// The block's products, K rows of N per class; row c·K holds the exponentials, all K rows get G'.
    pub(super) rows: &'a mut [T],
    /// The block's arg-max sub-centres, N per class (K > 1).
    pub(super) subcentre: &'a [T],
    /// Scratch for a class's gradient row, N.
    pub(super) g: &'a mut [T],
    /// Scratch for a row of V, N.
    pub(super) vbuf: &'a mut [T],
    /// The block's first class.
    pub(super) c0: usize,
    /// K.
    pub(super) k: usize,
    /// N.
    pub(super) n: usize,
    /// The softmax coefficients q·a / Σe, N.
    pub(super) pc: &'a [T],
    /// The gradient scales q, N.
    pub(super) q: &'a [T],
    /// 1 / max(‖w_r‖, eps) of every weight row.
    pub(super) inv: &'a [T],
    /// The gradient entries at the targets.
    pub(super) targets: ClassTargets<'a, T>,
    /// The target weights V.
    pub(super) v: TargetWeights<'a, T>,
}

impl<T: Real> WithSimd for LogitGradient<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, sd: S) {
        let (k, n) = (self.k, self.n);
        for (j, block) in self.rows.chunks_exact_mut(k * n).enumerate() {
            let cl = self.c0 + j;
            if self.v.is_retired(cl) {
                block.fill(T::ZERO);
                continue;
            }
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
                let best_k = &self.subcentre[j * n..(j + 1) * n];
                for (jj, out) in block.chunks_exact_mut(n).enumerate() {
                    let w = self.inv[cl * k + jj];
                    Expand {
                        out,
                        g: &*g,
                        kidx: best_k,
                        j: T::from_f64(jj as f64),
                        w,
                    }
                    .with_simd(sd);
                }
            }
        }
    }
}
