//! The defaults and checks of [`Enrolment`] (defined in `crate::lifecycle`).

use super::{check_positive, invalid};
use crate::error::Result;
use crate::lifecycle::Enrolment;

impl Enrolment {
    /// Lloyd iterations of the spherical k-means at most, by default. The
    /// iteration stops earlier when no assignment changes (a few-shot
    /// class converges in a handful).
    ///
    /// ```
    /// assert_eq!(arcface::Enrolment::DEFAULT_KMEANS_ITERS, 50);
    /// ```
    pub const DEFAULT_KMEANS_ITERS: usize = 50;

    /// Checks the fields; the error names the first bad one.
    ///
    /// ```
    /// use arcface::Enrolment;
    /// assert!(Enrolment::default().validate().is_ok());
    /// assert!(Enrolment { margin: Some(f64::NAN), ..Enrolment::default() }.validate().is_err());
    /// assert!(Enrolment { kmeans_iters: 0, ..Enrolment::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_positive("kmeans_iters", self.kmeans_iters)?;
        if let Some(m) = self.margin {
            if !m.is_finite() {
                return Err(crate::Error::NonFiniteMargin { class: 0, value: m });
            }
        }
        if !self.class_weight.is_finite() {
            return Err(invalid(
                "class_weight",
                format!("is {}, must be finite", self.class_weight),
            ));
        }
        Ok(())
    }
}

/// Seed 0, [`Enrolment::DEFAULT_KMEANS_ITERS`] iterations, the head's
/// uniform margin, class weight 1 (mmpretrain's implicit weight).
impl Default for Enrolment {
    fn default() -> Self {
        Self {
            seed: 0,
            kmeans_iters: Self::DEFAULT_KMEANS_ITERS,
            margin: None,
            class_weight: 1.0,
        }
    }
}
