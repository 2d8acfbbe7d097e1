//! Conversions between half-precision storage (f16, bf16) and f32
//! (deviation D13): weights and features kept in half precision are widened
//! to f32 at the boundary (with F16C or NEON conversions where the CPU has
//! them, through `half`); all arithmetic (products, exponentials, sums) is
//! f32. Named `half_precision`, not `half`, because the crate re-exports
//! the `half` crate under that name.

use crate::config::HeadConfig;
use crate::error::{check_len, Result};
use crate::head::ArcFaceHead;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// Widens f16 or bf16 `src` into `dst`; `what` names the source in errors.
fn widen<H>(what: &'static str, src: &[H], dst: &mut [f32]) -> Result<()>
where
    [H]: HalfFloatSliceExt,
{
    check_len(what, src.len(), dst.len())?;
    src.convert_to_f32_slice(dst);
    Ok(())
}

/// Rounds f32 `src` to f16 or bf16 into `dst`.
fn narrow<H>(src: &[f32], dst: &mut [H]) -> Result<()>
where
    [H]: HalfFloatSliceExt,
{
    check_len("f32 source", src.len(), dst.len())?;
    dst.convert_from_f32_slice(src);
    Ok(())
}

/// Widens f16 values into `dst` (same length).
///
/// ```
/// use arcface::half::f16;
/// let src = [f16::from_f32(0.5), f16::from_f32(-2.0)];
/// let mut dst = [0.0f32; 2];
/// arcface::widen_f16(&src, &mut dst).unwrap();
/// assert_eq!(dst, [0.5, -2.0]);
/// ```
pub fn widen_f16(src: &[f16], dst: &mut [f32]) -> Result<()> {
    widen("f16 source", src, dst)
}

/// Widens bf16 values into `dst` (same length).
///
/// ```
/// use arcface::half::bf16;
/// let src = [bf16::from_f32(0.25)];
/// let mut dst = [0.0f32; 1];
/// arcface::widen_bf16(&src, &mut dst).unwrap();
/// assert_eq!(dst, [0.25]);
/// ```
pub fn widen_bf16(src: &[bf16], dst: &mut [f32]) -> Result<()> {
    widen("bf16 source", src, dst)
}

/// Rounds f32 values to f16 into `dst` (same length), for storage.
///
/// ```
/// use arcface::half::f16;
/// let mut dst = [f16::ZERO; 1];
/// arcface::narrow_f16(&[1.0 / 3.0], &mut dst).unwrap();
/// assert_eq!(dst[0], f16::from_f32(1.0 / 3.0));
/// ```
pub fn narrow_f16(src: &[f32], dst: &mut [f16]) -> Result<()> {
    narrow(src, dst)
}

/// Rounds f32 values to bf16 into `dst` (same length), for storage.
///
/// ```
/// use arcface::half::bf16;
/// let mut dst = [bf16::ZERO; 1];
/// arcface::narrow_bf16(&[3.0], &mut dst).unwrap();
/// assert_eq!(dst[0].to_f32(), 3.0);
/// ```
pub fn narrow_bf16(src: &[f32], dst: &mut [bf16]) -> Result<()> {
    narrow(src, dst)
}

impl ArcFaceHead<f32> {
    /// A head with f16 weights ((C·K)×D, e.g. a half-precision PyTorch
    /// checkpoint), widened to f32.
    ///
    /// ```
    /// use arcface::{half::f16, ArcFaceHead, HeadConfig};
    /// let w: Vec<f16> = [1.0f32, 0.0, 0.0, 1.0].iter().map(|&v| f16::from_f32(v)).collect();
    /// let h = ArcFaceHead::from_weight_f16(HeadConfig::new(2, 2), &w).unwrap();
    /// assert_eq!(h.weight(), &[1.0, 0.0, 0.0, 1.0]);
    /// ```
    pub fn from_weight_f16(cfg: HeadConfig, weight: &[f16]) -> Result<Self> {
        Self::from_half_weight(cfg, "f16 source", weight)
    }

    /// A head with bf16 weights, widened to f32.
    ///
    /// ```
    /// use arcface::{half::bf16, ArcFaceHead, HeadConfig};
    /// let w: Vec<bf16> = [0.5f32, 0.5].iter().map(|&v| bf16::from_f32(v)).collect();
    /// let h = ArcFaceHead::from_weight_bf16(HeadConfig::new(1, 2), &w).unwrap();
    /// assert_eq!(h.weight(), &[0.5, 0.5]);
    /// ```
    pub fn from_weight_bf16(cfg: HeadConfig, weight: &[bf16]) -> Result<Self> {
        Self::from_half_weight(cfg, "bf16 source", weight)
    }

    fn from_half_weight<H>(cfg: HeadConfig, what: &'static str, weight: &[H]) -> Result<Self>
    where
        [H]: HalfFloatSliceExt,
    {
        let mut w = vec![0.0f32; weight.len()];
        widen(what, weight, &mut w)?;
        Self::from_weight(cfg, &w)
    }
}
