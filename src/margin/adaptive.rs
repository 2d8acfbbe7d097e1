//! Adaptive margins from class counts (upstream's `SetAdaptiveMarginsHook`,
//! deviations D5 and D6): with a negative power, rarer classes get larger
//! margins. The hook's defaults and parameter checks are in `crate::config`.

use crate::error::{Error, Result};

/// Upstream's `SetAdaptiveMarginsHook(margin_min=0.05, margin_max=0.5, power=-0.25)`:
/// margins from the class frequencies of the training labels.
///
/// $$n_c = \max(\#\{i : y_i = c\}, 1),\quad p_c = n_c^{\,p},\quad
/// m_c = \frac{p_c - \min p}{\max p - \min p}(m_{max} - m_{min}) + m_{min}$$
///
/// With $p < 0$ the rarest class gets `margin_max`. Counts run over all
/// `num_classes` classes, an absent class counting as 1 (D6); when every
/// $p_c$ is equal (one class, equal counts, $p = 0$) every margin is
/// `margin_max` instead of upstream's NaN (D5).
///
/// ```
/// use arcface::AdaptiveMargins;
/// let m = AdaptiveMargins::default().compute(&[0, 0, 0, 0, 1, 2, 2], 4).unwrap();
/// assert_eq!(m.len(), 4);
/// assert!((m[0] - 0.05).abs() < 1e-12);      // most frequent
/// assert!((m[3] - 0.5).abs() < 1e-12);       // absent: rarest
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveMargins {
    /// Margin of the most frequent class (for `power < 0`).
    pub margin_min: f64,
    /// Margin of the rarest class (for `power < 0`).
    pub margin_max: f64,
    /// Exponent applied to the counts.
    pub power: f64,
}

impl AdaptiveMargins {
    /// Computes the per-class margins from training labels.
    ///
    /// Errors: no labels, a label outside `0..num_classes` (naming the
    /// sample), non-finite parameters, or a result that is not finite.
    ///
    /// ```
    /// let err = arcface::AdaptiveMargins::default().compute(&[0, 5], 3).unwrap_err();
    /// assert!(err.to_string().contains("sample 1"));
    /// ```
    pub fn compute(&self, labels: &[i64], num_classes: usize) -> Result<Vec<f64>> {
        self.validate()?;
        let bad = |reason: String| Error::AdaptiveMargins { reason };
        if num_classes == 0 {
            return Err(bad("num_classes is 0".into()));
        }
        if labels.is_empty() {
            return Err(bad("no labels were given".into()));
        }
        let mut counts: Vec<u64> = Vec::new();
        counts.try_reserve_exact(num_classes).map_err(|_| {
            bad(format!(
                "num_classes = {num_classes} does not fit in memory"
            ))
        })?;
        counts.resize(num_classes, 0);
        crate::error::check_labels(labels, num_classes)?;
        for &label in labels {
            counts[label as usize] += 1;
        }
        let pf: Vec<f64> = counts
            .iter()
            .map(|&n| (n.max(1) as f64).powf(self.power))
            .collect();
        let lo = pf.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = self.margin_max - self.margin_min;
        let out: Vec<f64> = if hi == lo {
            vec![self.margin_max; num_classes]
        } else {
            pf.iter()
                .map(|p| (p - lo) / (hi - lo) * span + self.margin_min)
                .collect()
        };
        if let Some((c, v)) = out.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(format!("margin of class {c} came out as {v}")));
        }
        Ok(out)
    }
}
