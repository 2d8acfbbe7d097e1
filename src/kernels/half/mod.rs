//! The serving forward over half-precision weights: `pt[r·n + i] =
//! scale_r · (w_r · x̂_i)` with each row of W stored in f16 or bf16 and
//! widened to f32 in registers, never in memory.
//!
//! A row of D halves is stored as ⌈D/2⌉ little-endian `u32` words, two
//! halves a word (the even element in the low 16 bits, a zero half padding
//! an odd D): byte for byte the row of halves. One register of L words
//! widens into two f32 registers by one of the strategies in [`widen`]:
//! with integer operations that every instruction set (and every emulated
//! width) has, into the L even elements and the L odd ones; or, for f16 on
//! AVX-512, by the hardware conversion, into the elements in order. The
//! samples are laid out once per call to match (for the integer widening,
//! per chunk of 2L elements: the even ones, then the odd ones), so the dot
//! product is unchanged. bf16 widens by a shift (its bits are an f32's upper
//! half); f16 by rebasing the exponent (below) or by `vcvtph2ps`.

#[cfg(target_arch = "x86_64")]
mod f16c;
mod widen;

use super::small_gemm::Prefetch;
#[cfg(target_arch = "x86_64")]
pub(crate) use f16c::{forward as f16c_forward, CvtF16c};
use half::{bf16, f16};
use pulp::{Simd, WithSimd};
#[cfg(target_arch = "x86_64")]
pub(crate) use widen::CvtV4;
pub(crate) use widen::{Soft, Widen};

/// A half-precision storage type a [`HalfHead`](crate::HalfHead) holds its
/// weights in: [`half::f16`] or [`half::bf16`]. Sealed.
///
/// ```
/// use arcface::{half::{bf16, f16}, HalfFloat};
/// assert_eq!(<f16 as HalfFloat>::widen(0x3C00), 1.0);
/// assert_eq!(<bf16 as HalfFloat>::bits_of(1.0), 0x3F80);
/// assert_eq!(<bf16 as HalfFloat>::NAME, "bf16");
/// ```
pub trait HalfFloat: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The type's name, as in errors and tables: `"f16"`, `"bf16"`.
    const NAME: &'static str;
    /// What errors call its weights: `"f16 weight"`, `"bf16 weight"`.
    const WHAT: &'static str;
    /// The checkpoint dtype that stores it.
    const DTYPE: crate::WeightDtype;
    /// Its bits.
    fn to_bits(self) -> u16;
    /// The bits of `x` rounded to nearest.
    fn bits_of(x: f32) -> u16;
    /// The value of `bits`, exactly.
    fn widen(bits: u16) -> f32;
}

/// The crate-private side of [`HalfFloat`] (it also seals it), so that
/// pulp's types stay out of the public API.
pub(crate) mod sealed {
    use pulp::Simd;
    pub trait Sealed {
        /// Whether it is f16, which the CPU's conversion (`vcvtph2ps`, AVX-512
        /// or F16C) widens; the hardware paths are taken only then.
        const HARDWARE_F16: bool;
        /// The two halves of each word of `w` as f32: the low ones, then
        /// the high ones.
        fn widen_pairs<S: Simd>(s: S, w: S::u32s) -> (S::f32s, S::f32s);
    }
}

impl HalfFloat for bf16 {
    const NAME: &'static str = "bf16";
    const WHAT: &'static str = "bf16 weight";
    const DTYPE: crate::WeightDtype = crate::WeightDtype::BF16;
    fn to_bits(self) -> u16 {
        bf16::to_bits(self)
    }
    fn bits_of(x: f32) -> u16 {
        bf16::from_f32(x).to_bits()
    }
    fn widen(bits: u16) -> f32 {
        f32::from_bits((bits as u32) << 16)
    }
}

impl sealed::Sealed for bf16 {
    const HARDWARE_F16: bool = false;
    /// bf16 is the upper half of an f32: the low half shifted up, the high
    /// half with the low bits cleared.
    #[inline(always)]
    fn widen_pairs<S: Simd>(s: S, w: S::u32s) -> (S::f32s, S::f32s) {
        let lo = s.wrapping_dyn_shl_u32s(w, s.splat_u32s(16));
        let hi = s.and_u32s(w, s.splat_u32s(0xFFFF_0000));
        (s.transmute_f32s_u32s(lo), s.transmute_f32s_u32s(hi))
    }
}

/// f16's exponent and mantissa bits placed at an f32's (shifted left by 13).
const F16_MAG: u32 = 0x7FFF << 13;
/// 2^112 = 2^(127 − 15): rebases an f16 exponent placed in an f32.
const F16_REBASE: f32 = f32::from_bits((127 + 112) << 23);
/// The smallest placed magnitude of an f16 infinity (exponent 31).
const F16_INF_PLACED: u32 = 0x7C00 << 13;

/// The f32 of one f16's placed magnitude `mag` (`(h & 0x7FFF) << 13`) and
/// sign bit `sign` (at bit 31): a finite value is the placed bits read as
/// an f32 times 2^112, exact for normals and subnormals alike (an f16
/// subnormal m·2^-24 is the f32 subnormal m·2^-136 scaled); infinities and
/// NaNs get the all-ones exponent, their mantissa (the NaN payload) kept.
#[inline(always)]
fn f16_placed<S: Simd>(s: S, mag: S::u32s, sign: S::u32s) -> S::f32s {
    let finite = s.mul_f32s(s.transmute_f32s_u32s(mag), s.splat_f32s(F16_REBASE));
    let special = s.transmute_f32s_u32s(s.add_u32s(mag, s.splat_u32s((255 - 31) << 23)));
    let is_special = s.greater_than_or_equal_u32s(mag, s.splat_u32s(F16_INF_PLACED));
    let v = s.select_f32s(is_special, special, finite);
    s.transmute_f32s_u32s(s.or_u32s(s.transmute_u32s_f32s(v), sign))
}

impl HalfFloat for f16 {
    const NAME: &'static str = "f16";
    const WHAT: &'static str = "f16 weight";
    const DTYPE: crate::WeightDtype = crate::WeightDtype::F16;
    fn to_bits(self) -> u16 {
        f16::to_bits(self)
    }
    fn bits_of(x: f32) -> u16 {
        f16::from_f32(x).to_bits()
    }
    fn widen(bits: u16) -> f32 {
        f16::from_bits(bits).to_f32()
    }
}

impl sealed::Sealed for f16 {
    const HARDWARE_F16: bool = true;
    #[inline(always)]
    fn widen_pairs<S: Simd>(s: S, w: S::u32s) -> (S::f32s, S::f32s) {
        let (mag, sign) = (s.splat_u32s(F16_MAG), s.splat_u32s(0x8000_0000));
        let lo_mag = s.and_u32s(s.wrapping_dyn_shl_u32s(w, s.splat_u32s(13)), mag);
        let lo_sign = s.and_u32s(s.wrapping_dyn_shl_u32s(w, s.splat_u32s(16)), sign);
        let hi_mag = s.and_u32s(s.wrapping_dyn_shr_u32s(w, s.splat_u32s(3)), mag);
        let hi_sign = s.and_u32s(w, sign);
        (
            f16_placed(s, lo_mag, lo_sign),
            f16_placed(s, hi_mag, hi_sign),
        )
    }
}

/// Packs a row of halves (bits) into words, two a word, the even element
/// low; an odd row ends with a zero half.
pub(crate) fn pack_row(bits: impl ExactSizeIterator<Item = u16>, out: &mut [u32]) {
    out.fill(0);
    for (j, b) in bits.enumerate() {
        out[j / 2] |= (b as u32) << (16 * (j % 2));
    }
}

/// Widens packed row `w` (⌈d/2⌉ words) into `out` (d values).
pub(crate) fn unpack_row<H: HalfFloat>(w: &[u32], out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = H::widen((w[j / 2] >> (16 * (j % 2))) as u16);
    }
}

/// Lanes of `u32` in one register of `S`.
#[inline(always)]
fn words<S: Simd>(_: S) -> usize {
    core::mem::size_of::<S::u32s>() / 4
}

/// Weight rows per register block at N = 1 (sixteen accumulator chains).
const ROWS_ONE: usize = 8;
/// Weight rows and samples per register block for N > 1: each widened
/// register meets four samples, and 8 accumulators, 4 widened registers and
/// the samples' 2 fit the 16 registers of AVX2.
const ROWS_MANY: usize = 2;
const SAMPLES_MANY: usize = 4;
/// How many rows ahead of a block the software prefetch reads (16 rows:
/// 16 KiB of bf16 at D = 512).
const AHEAD: usize = 2 * ROWS_ONE;

/// The half-precision forward over a block of packed weight rows (see the
/// module docs): `pt[r·n + i] = scale[r] · (w_r · x̂_i)`, one dispatch.
///
/// Each row is read once for all `n` samples: at N = 1 eight rows at a
/// time, otherwise two rows against four samples at a time (the rest of
/// the samples one by one).
pub(crate) struct HalfForward<'a, H> {
    /// Packed rows, `p` words each.
    pub w: &'a [u32],
    /// Words per row, ⌈d/2⌉.
    pub p: usize,
    /// The samples, n×d.
    pub xs: &'a [f32],
    pub d: usize,
    pub n: usize,
    /// Scratch for the permuted samples, at least n·2p.
    pub xp: &'a mut [f32],
    /// A factor per row (S / max(‖w_r‖, ε) for logits).
    pub scale: &'a [f32],
    /// The output, rows × n.
    pub pt: &'a mut [f32],
    pub _h: core::marker::PhantomData<H>,
}

impl<H: HalfFloat> HalfForward<'_, H> {
    /// Runs on `arch` with the fastest widening it has (see [`widen`]):
    /// f16 through the hardware conversion when `arch` is AVX-512, or AVX2
    /// on a CPU with F16C; otherwise the integer widening at `arch`'s width.
    pub fn dispatch(self, arch: pulp::Arch) {
        #[cfg(target_arch = "x86_64")]
        if H::HARDWARE_F16 {
            if let pulp::Arch::V4(v4) = arch {
                return Simd::vectorize(v4, OnV4(self, v4));
            }
            if let (pulp::Arch::V3(v3), Some(cvt)) = (arch, CvtF16c::detect()) {
                return f16c_forward(self, v3, cvt);
            }
        }
        arch.dispatch(self)
    }

    /// The forward at width `S`, widening with `wd`.
    #[inline(always)]
    pub(crate) fn run_with<S: Simd, W: Widen<S>>(self, s: S, wd: W) {
        let (p, d, n) = (self.p, self.d, self.n);
        let rows = (self.w.len() / p.max(1))
            .min(self.scale.len())
            .min(self.pt.len() / n.max(1));
        if n == 0 || rows == 0 || self.xs.len() < n * d || self.xp.len() < n * 2 * p {
            self.pt.fill(0.0);
            return;
        }
        let l = words(s);
        let jn = p / l;
        for i in 0..n {
            let xp = &mut self.xp[i * 2 * p..(i + 1) * 2 * p];
            let x = &self.xs[i * d..(i + 1) * d];
            if W::IN_ORDER {
                xp[..d].copy_from_slice(x);
                xp[d..].fill(0.0);
            } else {
                permute(x, xp, l, jn);
            }
        }
        let blk = Block::<H, W> {
            pf: Prefetch::new(),
            wd,
            w: self.w,
            p,
            jn,
            xp: &self.xp[..n * 2 * p],
            n,
            scale: self.scale,
            _h: core::marker::PhantomData,
        };
        let rb = if n == 1 { ROWS_ONE } else { ROWS_MANY };
        let full = rows - rows % rb;
        let pt = &mut *self.pt;
        for r0 in (0..full).step_by(rb) {
            let out = &mut pt[r0 * n..(r0 + rb) * n];
            if n == 1 {
                blk.run::<S, ROWS_ONE, 1>(s, r0, out);
            } else {
                blk.run::<S, ROWS_MANY, SAMPLES_MANY>(s, r0, out);
            }
        }
        for r0 in full..rows {
            blk.run::<S, 1, 1>(s, r0, &mut pt[r0 * n..(r0 + 1) * n]);
        }
    }
}

/// The portable forward: integer widening at any width.
impl<H: HalfFloat> WithSimd for HalfForward<'_, H> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        self.run_with(s, Soft::<H>(core::marker::PhantomData))
    }
}

/// The f16 forward on AVX-512 with the hardware conversion (dispatched
/// only as `V4`, whose token it carries).
#[cfg(target_arch = "x86_64")]
struct OnV4<'a, H>(HalfForward<'a, H>, pulp::x86::V4);

#[cfg(target_arch = "x86_64")]
impl<H: HalfFloat> WithSimd for OnV4<'_, H> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        self.0.run_with(self.1, CvtV4)
    }
}

/// Sample `x` (d values) in the words' order into `xp` (2p values): per
/// chunk of `l` words, the `l` even elements then the `l` odd ones; the
/// tail after `jn` chunks pairwise in place, a missing odd element 0.
fn permute(x: &[f32], xp: &mut [f32], l: usize, jn: usize) {
    let at = |j: usize| x.get(j).copied().unwrap_or(0.0);
    for c in 0..jn {
        let (base, out) = (2 * l * c, &mut xp[2 * l * c..2 * l * (c + 1)]);
        for q in 0..l {
            out[q] = at(base + 2 * q);
            out[l + q] = at(base + 2 * q + 1);
        }
    }
    for (j, o) in xp.iter_mut().enumerate().skip(2 * l * jn) {
        *o = at(j);
    }
}

/// Packed rows against the prepared samples (see [`HalfForward`]).
struct Block<'a, H, W> {
    pf: Prefetch,
    wd: W,
    w: &'a [u32],
    p: usize,
    /// Whole registers of words per row.
    jn: usize,
    xp: &'a [f32],
    n: usize,
    /// A factor per row, applied as each product is stored.
    scale: &'a [f32],
    _h: core::marker::PhantomData<H>,
}

impl<H: HalfFloat, W> Block<'_, H, W> {
    /// Rows `r0 .. r0 + R` against every sample, in groups of `NS` (the
    /// rest one by one), into `pt` (R × n, scaled).
    #[inline(always)]
    fn run<S: Simd, const R: usize, const NS: usize>(&self, s: S, r0: usize, pt: &mut [f32])
    where
        W: Widen<S>,
    {
        // the rows AHEAD on are fetched, their lines spread over the
        // block's sweeps: several sweeps per block pause the stream the
        // hardware prefetchers follow, and even a single sample's one sweep
        // (half the bytes per FMA of f32) ran faster with the hint
        let p = self.p;
        let at = self.w.len().min((r0 + AHEAD) * p);
        let next = &self.w[at..self.w.len().min(at + R * p)];
        let groups = self.n / NS + self.n % NS;
        let per = core::mem::size_of_val(next)
            .div_ceil(64)
            .div_ceil((groups * self.jn).max(1));
        let mut i0 = 0;
        let mut step = 0;
        while i0 < self.n {
            let pf = (next, step * per, per);
            if i0 + NS <= self.n {
                self.group::<S, R, NS>(s, r0, i0, pt, pf);
                i0 += NS;
            } else {
                self.group::<S, R, 1>(s, r0, i0, pt, pf);
                i0 += 1;
            }
            step += self.jn;
        }
    }

    /// Rows `r0 ..` against samples `i0 .. i0 + NS`, fetching `per` lines
    /// of `pf.0` a step from line `pf.1`.
    #[inline(always)]
    fn group<S: Simd, const R: usize, const NS: usize>(
        &self,
        s: S,
        r0: usize,
        i0: usize,
        pt: &mut [f32],
        (next, first, per): (&[u32], usize, usize),
    ) where
        W: Widen<S>,
    {
        let (p, jn, n) = (self.p, self.jn, self.n);
        let l = words(s);
        let row = |r: usize| &self.w[(r0 + r) * p..(r0 + r + 1) * p];
        let wr: [&[S::u32s]; R] = core::array::from_fn(|r| &S::as_simd_u32s(row(r)).0[..jn]);
        let xr: [&[S::f32s]; NS] = core::array::from_fn(|b| {
            let x = &self.xp[(i0 + b) * 2 * p..(i0 + b + 1) * 2 * p];
            &S::as_simd_f32s(x).0[..2 * jn]
        });
        // the two widened registers in separate chains: 2·R·NS sums
        let mut acc = [[s.splat_f32s(0.0); NS]; R];
        let mut acc2 = [[s.splat_f32s(0.0); NS]; R];
        for j in 0..jn {
            if per > 0 {
                self.pf.lines(next, first + j * per, per);
            }
            let xv: [(S::f32s, S::f32s); NS] =
                core::array::from_fn(|b| (xr[b][2 * j], xr[b][2 * j + 1]));
            for r in 0..R {
                let (lo, hi) = self.wd.pairs(s, wr[r][j]);
                for b in 0..NS {
                    acc[r][b] = s.mul_add_e_f32s(lo, xv[b].0, acc[r][b]);
                    acc2[r][b] = s.mul_add_e_f32s(hi, xv[b].1, acc2[r][b]);
                }
            }
        }
        for r in 0..R {
            let tail = &row(r)[jn * l..];
            for b in 0..NS {
                let x = &self.xp[(i0 + b) * 2 * p + 2 * jn * l..(i0 + b + 1) * 2 * p];
                let mut v = s.reduce_sum_f32s(s.add_f32s(acc[r][b], acc2[r][b]));
                for (w, xx) in tail.iter().zip(x.chunks_exact(2)) {
                    v += H::widen(*w as u16) * xx[0] + H::widen((*w >> 16) as u16) * xx[1];
                }
                pt[r * n + i0 + b] = v * self.scale[r0 + r];
            }
        }
    }
}
