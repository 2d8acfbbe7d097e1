//! The head's margins: one store, the per-class list $m_c$ in the
//! configuration (`cfg.margins`, always `Margins::PerClass` of length C once
//! the head exists), and one cached form derived from it, the constants of
//! each class rounded to T (`margin_consts`: $-\cos m$, $m \sin m$,
//! $\cos m$, $\sin m$). The cache exists because the class pass needs those
//! constants for every target sample of every step, and computing them
//! there would add two f64 library calls per sample. Both are written only
//! by `install_margins`, the one setter every public setter goes through.

use super::ArcFaceHead;
use crate::error::Result;
use crate::margin::MarginT;
use crate::memory::{out_of_memory, try_filled};
use crate::real::Real;
use crate::{AdaptiveMargins, MarginConstants, Margins};

impl<T: Real> ArcFaceHead<T> {
    /// The per-class margins in use ($m_c$, f64 as given).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(3, 8), 0).unwrap();
    /// assert_eq!(h.margins(), &[0.5; 3]);
    /// ```
    pub fn margins(&self) -> &[f64] {
        match &self.cfg.margins {
            Margins::PerClass(list) => list,
            // `install_margins` stores the per-class list when the head is
            // built and at every change
            Margins::Uniform(_) => unreachable!("the head stores per-class margins"),
        }
    }

    /// The derived constants of class `c` (D8: $t = -\cos m$, $s = m\sin m$ in f64).
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    /// assert_eq!(h.margin_constants(1).margin, 0.5);
    /// ```
    pub fn margin_constants(&self, c: usize) -> MarginConstants {
        MarginConstants::new(self.margins()[c])
    }

    /// `set_margins`: one margin per class, finite (D7), any sign and size.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    /// h.set_margins(&[0.2, 0.4]).unwrap();
    /// assert!(h.set_margins(&[0.2]).is_err());
    /// assert!(h.set_margins(&[0.2, f64::NAN]).is_err());
    /// ```
    pub fn set_margins(&mut self, margins: &[f64]) -> Result<()> {
        crate::config::validate_margins(margins, self.cfg.num_classes)?;
        self.check_margins_fit(margins)?;
        self.install_margins(margins.to_vec())
    }

    /// `set_margins(m)` with one number for every class.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    /// h.set_uniform_margin(0.3).unwrap();
    /// assert_eq!(h.margins(), &[0.3, 0.3]);
    /// ```
    pub fn set_uniform_margin(&mut self, m: f64) -> Result<()> {
        self.set_margins(&try_filled(self.cfg.num_classes, m, "margins")?)
    }

    /// Upstream's `SetAdaptiveMarginsHook`: margins from the class counts of
    /// the training labels (see [`AdaptiveMargins`]).
    ///
    /// ```
    /// use arcface::{AdaptiveMargins, ArcFaceHead, HeadConfig};
    /// let mut h = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 0).unwrap();
    /// h.set_adaptive_margins(&[0, 0, 0, 1, 2, 2], AdaptiveMargins::default()).unwrap();
    /// assert!(h.margins()[1] > h.margins()[0]);
    /// ```
    pub fn set_adaptive_margins(&mut self, labels: &[i64], params: AdaptiveMargins) -> Result<()> {
        let m = params.compute(labels, self.cfg.num_classes)?;
        self.set_margins(&m)
    }

    /// The margin constants of class `c` in T, for the class pass.
    pub(super) fn target_margin(&self, c: usize) -> &MarginT<T> {
        &self.margin_consts[c]
    }

    /// Logits must stay finite in T: |S|·(1 + |m sin m|) well inside T's range.
    pub(super) fn check_margins_fit(&self, margins: &[f64]) -> Result<()> {
        let limit = T::MAX.to_f64() / 8.0;
        for (class, &m) in margins.iter().enumerate() {
            let k = MarginConstants::new(m);
            let s = self.cfg.scale.abs().max(1.0);
            if m.abs() > limit || s * (2.0 + k.sinm_m.abs()) > limit {
                return Err(crate::config::invalid(
                    "margins",
                    format!(
                        "of class {class} ({m}) times the scale overflows {}",
                        T::NAME
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The one setter of the margins: stores the validated per-class list
    /// and derives the constants in T from it.
    pub(super) fn install_margins(&mut self, margins: Vec<f64>) -> Result<()> {
        let mut consts = Vec::new();
        consts
            .try_reserve_exact(margins.len())
            .map_err(|_| out_of_memory::<MarginT<T>>("margin constants", margins.len() as u128))?;
        consts.extend(
            margins
                .iter()
                .map(|&m| MarginT::from_f64(&MarginConstants::new(m))),
        );
        self.margin_consts = consts;
        self.cfg.margins = Margins::PerClass(margins);
        Ok(())
    }
}
