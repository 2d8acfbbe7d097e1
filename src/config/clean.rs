//! The defaults and checks of sub-centre cleaning ([`crate::CleanConfig`]).

use super::invalid;
use crate::clean::CleanConfig;
use crate::error::Result;

impl CleanConfig {
    /// The angle, in degrees, beyond which a sample is taken for noise:
    /// 75°, the threshold of sub-centre ArcFace (Deng et al., ECCV 2020)
    /// for dropping samples far from their class's dominant sub-centre.
    ///
    /// ```
    /// assert_eq!(arcface::CleanConfig::DEFAULT_THRESHOLD_DEGREES, 75.0);
    /// ```
    pub const DEFAULT_THRESHOLD_DEGREES: f64 = 75.0;

    /// Checks the threshold: finite and strictly between 0° and 180° (at
    /// 0° nothing could be kept, at 180° nothing dropped).
    ///
    /// ```
    /// use arcface::CleanConfig;
    /// assert!(CleanConfig::default().validate().is_ok());
    /// assert!(CleanConfig::new(180.0).validate().is_err());
    /// assert!(CleanConfig::new(f64::NAN).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let t = self.threshold_degrees;
        if !(t > 0.0 && t < 180.0) {
            return Err(invalid(
                "threshold",
                format!("is {t}, must be an angle in degrees strictly between 0 and 180"),
            ));
        }
        Ok(())
    }
}

/// The paper's threshold.
impl Default for CleanConfig {
    fn default() -> Self {
        Self {
            threshold_degrees: Self::DEFAULT_THRESHOLD_DEGREES,
        }
    }
}
