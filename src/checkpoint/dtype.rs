//! The element types a checkpoint stores its tensors in, and their
//! little-endian codec. Values pass through f64, which holds every f16,
//! bf16 and f32 exactly.

use crate::error::{Error, Result};
use crate::real::Real;
use half::{bf16, f16};
use safetensors::tensor::Dtype;

/// How the weight tensor is stored.
///
/// ```
/// use arcface::WeightDtype;
/// assert_eq!(WeightDtype::default(), WeightDtype::F32);
/// assert_eq!("bf16".parse::<WeightDtype>().unwrap(), WeightDtype::BF16);
/// assert_eq!(WeightDtype::F16.name(), "F16");
/// assert!("int8".parse::<WeightDtype>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    /// IEEE binary32: mmpretrain's parameter dtype.
    #[default]
    F32,
    /// IEEE binary16 (`torch.float16`).
    F16,
    /// bfloat16 (`torch.bfloat16`).
    BF16,
    /// IEEE binary64 (`torch.float64`).
    F64,
}

impl WeightDtype {
    /// The safetensors name: `"F32"`, `"F16"`, `"BF16"`, `"F64"`.
    ///
    /// ```
    /// assert_eq!(arcface::WeightDtype::BF16.name(), "BF16");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "F32",
            WeightDtype::F16 => "F16",
            WeightDtype::BF16 => "BF16",
            WeightDtype::F64 => "F64",
        }
    }

    /// Bytes per element.
    ///
    /// ```
    /// assert_eq!(arcface::WeightDtype::BF16.size(), 2);
    /// ```
    pub fn size(self) -> usize {
        match self {
            WeightDtype::F16 | WeightDtype::BF16 => 2,
            WeightDtype::F32 => 4,
            WeightDtype::F64 => 8,
        }
    }

    /// The dtype that holds `T` exactly: F64 for f64, F32 for f32.
    pub(super) fn exact_for<T: Real>() -> Self {
        if T::NAME == "f64" {
            WeightDtype::F64
        } else {
            WeightDtype::F32
        }
    }

    pub(super) fn to_safetensors(self) -> Dtype {
        match self {
            WeightDtype::F32 => Dtype::F32,
            WeightDtype::F16 => Dtype::F16,
            WeightDtype::BF16 => Dtype::BF16,
            WeightDtype::F64 => Dtype::F64,
        }
    }

    /// The float dtype of a stored tensor; `None` for any other type.
    pub(super) fn from_safetensors(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(WeightDtype::F32),
            Dtype::F16 => Some(WeightDtype::F16),
            Dtype::BF16 => Some(WeightDtype::BF16),
            Dtype::F64 => Some(WeightDtype::F64),
            _ => None,
        }
    }

    /// Appends `x` as little-endian bytes; `false` if the stored value is
    /// not finite (an overflow, such as beyond ±65504 in F16).
    fn encode(self, x: f64, out: &mut Vec<u8>) -> bool {
        match self {
            WeightDtype::F32 => {
                let v = x as f32;
                out.extend_from_slice(&v.to_le_bytes());
                v.is_finite()
            }
            WeightDtype::F16 => {
                let v = f16::from_f64(x);
                out.extend_from_slice(&v.to_le_bytes());
                v.is_finite()
            }
            WeightDtype::BF16 => {
                let v = bf16::from_f64(x);
                out.extend_from_slice(&v.to_le_bytes());
                v.is_finite()
            }
            WeightDtype::F64 => {
                out.extend_from_slice(&x.to_le_bytes());
                x.is_finite()
            }
        }
    }

    fn decode(self, b: &[u8]) -> f64 {
        match self {
            WeightDtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            WeightDtype::F16 => f16::from_le_bytes([b[0], b[1]]).to_f64(),
            WeightDtype::BF16 => bf16::from_le_bytes([b[0], b[1]]).to_f64(),
            WeightDtype::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
        }
    }

    /// `values` as little-endian bytes of this dtype, and the index of the
    /// first value whose stored form is not finite, if any.
    pub(super) fn encode_all<T: Real>(self, values: &[T]) -> (Vec<u8>, Option<usize>) {
        let mut data = Vec::with_capacity(values.len() * self.size());
        let mut unfit = None;
        for (i, v) in values.iter().enumerate() {
            if !self.encode(v.to_f64(), &mut data) && unfit.is_none() {
                unfit = Some(i);
            }
        }
        (data, unfit)
    }

    /// Little-endian elements of this dtype converted to `T` (rounded to
    /// nearest when `T` is narrower).
    pub(super) fn decode_all<T: Real>(self, bytes: &[u8]) -> Vec<T> {
        bytes
            .chunks_exact(self.size())
            .map(|b| T::from_f64(self.decode(b)))
            .collect()
    }
}

impl core::str::FromStr for WeightDtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(WeightDtype::F32),
            "f16" | "float16" | "half" => Ok(WeightDtype::F16),
            "bf16" | "bfloat16" => Ok(WeightDtype::BF16),
            "f64" | "float64" | "double" => Ok(WeightDtype::F64),
            _ => Err(crate::config::invalid(
                "dtype",
                format!("is {s:?}, expected f32, f16, bf16 or f64"),
            )),
        }
    }
}
