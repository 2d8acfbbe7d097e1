//! The small field checks every configuration shares; each error names the
//! field.

use crate::error::{Error, Result};

/// An [`Error::InvalidConfig`] naming `field`.
pub(crate) fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidConfig { field, reason }
}

/// A count that must be at least 1.
pub(crate) fn check_positive(field: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(invalid(field, "is 0, must be at least 1".into()));
    }
    Ok(())
}

/// A finite number ≥ 0 (rates, decays, factors).
pub(crate) fn check_nonneg(field: &'static str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(invalid(field, format!("is {v}, must be finite and >= 0")));
    }
    Ok(())
}

/// A number in [0, 1) (Adam's betas).
pub(crate) fn check_unit_interval(field: &'static str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return Err(invalid(field, format!("is {v}, must be in [0, 1)")));
    }
    Ok(())
}

/// A PartialFC sample rate: in (0, 1].
pub(crate) fn check_sample_rate(rate: f64) -> Result<()> {
    if rate > 0.0 && rate <= 1.0 {
        Ok(())
    } else {
        Err(invalid(
            "sample_rate",
            format!("is {rate}, must be in (0, 1]"),
        ))
    }
}
