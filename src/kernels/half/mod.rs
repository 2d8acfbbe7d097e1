//! The serving forward over half-precision weights: `pt[i·rows + r] =
//! scale_r · (w_r · x̂_i)` with each row of W stored in f16 or bf16 and
//! widened to f32 in registers, never in memory.
//!
//! A row of D halves is ⌈D/2⌉ little-endian `u32` words, two halves a word
//! (the even element in the low 16 bits, a zero half padding an odd D).
//! The rows are stored in panels of [`PANEL`] = 16: a panel holds word 0 of
//! its 16 rows, then word 1, and so on, so that one AVX-512 register (or
//! 16/L narrower ones) loads word `j` of 16 rows. It widens into two f32
//! registers by one of the strategies in [`widen`]: with integer operations
//! that every instruction set (and every emulated width) has, into the 16
//! rows' even elements and their odd ones; or, for f16, by the hardware
//! conversion `vcvtph2ps`, into the halves in order (lanes `2u, 2u + 1`
//! are row `u`'s two). Each meets the samples' elements `2j` and `2j + 1`
//! broadcast (the pair broadcast, for the hardware order), so every lane
//! of an accumulator is one row's running dot product with one sample:
//! no horizontal sum per (row, sample), and eight samples' 16 accumulators
//! share each widened register on AVX-512. bf16 widens by a shift (its
//! bits are an f32's upper half); f16 by rebasing the exponent (below) or
//! by `vcvtph2ps`.
//!
//! The panels, the broadcast samples and storing each sample's products
//! contiguously took the N = 8 forward from 0.53–0.71 to 0.43–0.52 × the f32
//! head's time at (512, 100 000, 1) (`bench_serve`, README; the steps in
//! `docs/perf.md`): the previous layout, a row per register with a
//! horizontal sum per (row, sample), spent about a third of its time outside
//! the multiply-adds.

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

/// Rows per panel of the packed weights: a panel of rows `16q .. 16q + 16`
/// stores its rows' word `j` side by side (`(q·p + j)·16 + t` for row
/// `16q + t`), so that one AVX-512 register (or 16/L narrower ones) holds
/// word `j` of 16 rows and the lanes of a sum are rows: no horizontal sum
/// per (row, sample). A last partial panel is padded with zero rows.
pub(crate) const PANEL: usize = 16;

/// Samples per register group at widths of at least 16 lanes (2·8
/// accumulators in AVX-512's 32 registers), and below (2·4 in AVX2's 16).
const SAMPLES_WIDE: usize = 8;
const SAMPLES_NARROW: usize = 4;
/// How many panels ahead of the one being read the software prefetch
/// fetches, one line per word step of the panel's first sweep.
const AHEAD: usize = 2;

/// The samples `xs` (n×d) by word for [`HalfForward`]: `xt[2(j·n + i) + e]
/// = x_i[2j + e]` (0 past d), so that a word step's samples are adjacent.
pub(crate) fn interleave_samples(xs: &[f32], d: usize, n: usize, xt: &mut [f32]) {
    let p = d.div_ceil(2);
    for j in 0..p {
        for i in 0..n {
            let x = &xs[i * d..(i + 1) * d];
            xt[2 * (j * n + i)] = x[2 * j];
            xt[2 * (j * n + i) + 1] = x.get(2 * j + 1).copied().unwrap_or(0.0);
        }
    }
}

/// Where word `j` of row `r` is in weights of `p` words a row, in panels.
#[inline]
pub(crate) fn panel_index(p: usize, r: usize, j: usize) -> usize {
    ((r / PANEL) * p + j) * PANEL + r % PANEL
}

/// Words needed for `rows` rows of `p` words in panels (whole panels).
pub(crate) fn panel_words(rows: usize, p: usize) -> usize {
    rows.div_ceil(PANEL) * PANEL * p
}

/// The half-precision forward over whole panels of packed weight rows (see
/// the module docs): `pt[i·rows + r] = scale[r] · (w_r · x̂_i)`, one dispatch.
///
/// Each panel is read once for a group of samples: the lanes of a
/// register are 16 (or L) rows, and for each word `j` the widened even and
/// odd elements meet the samples' elements `2j` and `2j + 1` broadcast, so
/// every accumulator lane is one row's running dot product with one
/// sample (two accumulators per sample, for the even and the odd
/// elements).
pub(crate) struct HalfForward<'a, H> {
    /// Packed rows in panels, [`panel_words`] of the rows.
    pub w: &'a [u32],
    /// Words per row, ⌈d/2⌉.
    pub p: usize,
    /// The samples by word, [`interleave_samples`]' layout (2·p·n).
    pub xt: &'a [f32],
    pub d: usize,
    pub n: usize,
    /// A factor per row (S / max(‖w_r‖, ε) for logits).
    pub scale: &'a [f32],
    /// The output, n × rows: a sample's products are contiguous (for one
    /// class a row, a sample's logits).
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
        let rows = self.scale.len().min(self.pt.len() / n.max(1));
        let l = words(s);
        if n == 0
            || rows == 0
            || p != d.div_ceil(2)
            || self.w.len() < panel_words(rows, p)
            || self.xt.len() < 2 * p * n
            || !PANEL.is_multiple_of(l)
        {
            self.pt.fill(0.0);
            return;
        }
        let pf = Prefetch::new();
        // eight samples a group only where 32 registers hold their sums
        let wide = l >= PANEL;
        let span = PANEL * p;
        for (q, panel) in self.w[..panel_words(rows, p)]
            .chunks_exact(span)
            .enumerate()
        {
            let at = self.w.len().min((q + AHEAD) * span);
            let blk = Panel::<S, H, W> {
                pf,
                wd,
                w: S::as_simd_u32s(panel).0,
                next: &self.w[at..self.w.len().min(at + span)],
                xt: &self.xt[..2 * p * n],
                first: q * PANEL,
                rows: rows.min((q + 1) * PANEL) - q * PANEL,
                stride: rows,
                n,
                scale: self.scale,
                _h: core::marker::PhantomData,
            };
            let pt = &mut *self.pt;
            let mut i0 = 0;
            while i0 < n {
                if wide && i0 + SAMPLES_WIDE <= n {
                    blk.group::<SAMPLES_WIDE>(s, i0, pt);
                    i0 += SAMPLES_WIDE;
                } else if i0 + SAMPLES_NARROW <= n {
                    blk.group::<SAMPLES_NARROW>(s, i0, pt);
                    i0 += SAMPLES_NARROW;
                } else {
                    blk.group::<1>(s, i0, pt);
                    i0 += 1;
                }
            }
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

/// One panel against the samples (see [`HalfForward`]).
struct Panel<'a, S: Simd, H, W> {
    pf: Prefetch,
    wd: W,
    /// The panel's registers: word `j` of the rows of register `t` (rows
    /// `t·L ..`) at `j·(16/L) + t`.
    w: &'a [S::u32s],
    /// The panel `AHEAD` on, fetched during this one's first sweep.
    next: &'a [u32],
    xt: &'a [f32],
    /// Its first row, and how many of its rows are real (not padding).
    first: usize,
    rows: usize,
    /// Rows of the whole block: a sample's products in `pt`.
    stride: usize,
    n: usize,
    /// A factor per row, applied as each product is stored.
    scale: &'a [f32],
    _h: core::marker::PhantomData<H>,
}

impl<S: Simd, H: HalfFloat, W: Widen<S>> Panel<'_, S, H, W> {
    /// The panel's rows against samples `i0 .. i0 + NS`, one register of
    /// rows at a time, into `pt` (n × rows, scaled), prefetching the next
    /// panel's lines one a word step.
    #[inline(always)]
    fn group<const NS: usize>(&self, s: S, i0: usize, pt: &mut [f32]) {
        let l = words(s);
        let regs = PANEL / l;
        let n = self.n;
        for t in 0..regs {
            if t * l >= self.rows {
                break;
            }
            let mut even = [s.splat_f32s(0.0); NS];
            let mut odd = [s.splat_f32s(0.0); NS];
            let words = self.w.chunks_exact(regs);
            let xs = self.xt.chunks_exact(2 * n);
            for (j, (w, x)) in words.zip(xs).enumerate() {
                self.pf.line(self.next, j);
                let x = &x[2 * i0..2 * (i0 + NS)];
                let (a, b) = self.wd.pairs(s, w[t]);
                for k in 0..NS {
                    let (va, vb) = self.wd.samples(s, x[2 * k], x[2 * k + 1]);
                    even[k] = s.mul_add_e_f32s(a, va, even[k]);
                    odd[k] = s.mul_add_e_f32s(b, vb, odd[k]);
                }
            }
            // rows r0 .. r0 + live of each sample, scaled, in one store
            let (r0, live) = (self.first + t * l, l.min(self.rows - t * l));
            let scale = s.partial_load_f32s(&self.scale[r0..r0 + live]);
            for (k, (e, o)) in even.into_iter().zip(odd).enumerate() {
                let at = (i0 + k) * self.stride + r0;
                let v = s.mul_f32s(self.wd.fold(s, e, o), scale);
                s.partial_store_f32s(&mut pt[at..at + live], v);
            }
        }
    }
}
