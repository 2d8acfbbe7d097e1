//! Cleaning noisy labels with sub-centres (sub-center ArcFace, Deng et al.,
//! ECCV 2020): a head trained with K > 1 sub-centres per class gathers a
//! class's clean samples around one sub-centre and lets the noise (samples
//! of other classes, samples of no class) settle on the others or far from
//! all of them.
//!
//! The rule is documented on [`Cleaning`].
//!
//! The data is read once ([`ArcFaceHead::clean`]): one pass computes each
//! sample's K own-class cosines (N×K numbers are kept, K is small); the
//! dominant sub-centres, angles and masks then follow from those alone.
//! Afterwards [`ArcFaceHead::to_single_centre`] keeps only the dominant
//! sub-centres, the paper's starting point for retraining with K = 1 on
//! the kept samples.

mod pass;
mod report;

pub use report::{AngleStats, ClassCleaning};

use crate::config::invalid;
use crate::error::{check_labels, check_len, Error, Result};
use crate::head::ArcFaceHead;
use crate::memory::try_filled;
use crate::real::Real;
use crate::HeadConfig;

/// The cleaning's settings; its default and checks are in the
/// configuration module.
///
/// ```
/// let cfg = arcface::CleanConfig::new(70.0);
/// assert_eq!(cfg.threshold_degrees, 70.0);
/// assert_eq!(arcface::CleanConfig::default().threshold_degrees, 75.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanConfig {
    /// A sample is kept when its angle to its class's dominant sub-centre
    /// is below this many degrees, in (0, 180).
    pub threshold_degrees: f64,
}

impl CleanConfig {
    /// A threshold of `threshold_degrees` (checked when used).
    ///
    /// ```
    /// assert!(arcface::CleanConfig::new(0.0).validate().is_err());
    /// ```
    pub fn new(threshold_degrees: f64) -> Self {
        Self { threshold_degrees }
    }
}

/// Which samples a cleaning keeps.
///
/// ```
/// assert_eq!(arcface::CleanRule::default(), arcface::CleanRule::Official);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanRule {
    /// The paper's: angle to the dominant sub-centre below the threshold.
    #[default]
    Official,
    /// The official rule, and nearest to the dominant sub-centre.
    Strict,
}

/// What a cleaning found: per sample its own-class cosines, nearest
/// sub-centre, angle to the dominant one and whether each rule keeps it;
/// per class its dominant sub-centre and how many samples are nearest each.
///
/// For a labelled set $(x_i, y_i)$ and the cosines
/// $\cos\theta_{ik}$ of sample $i$ to the K sub-centres of its own class
/// (computed as the training step computes them):
///
/// - its **nearest** sub-centre is $n_i = \arg\max_k \cos\theta_{ik}$
///   (the lowest $k$ on ties);
/// - the **dominant** sub-centre of class $c$ is the one most of its
///   samples are nearest to, $\hat k_c = \arg\max_k |\{i : y_i = c, n_i = k\}|$
///   (the lowest $k$ on ties; 0 for a class without samples);
/// - the sample's **angle** is $\theta_i = \arccos \cos\theta_{i \hat k_{y_i}}$
///   in degrees, in $[0°, 180°]$;
/// - the paper's rule ([`CleanRule::Official`]) keeps it when
///   $\theta_i < \tau$ (the threshold, 75° by default,
///   [`CleanConfig::DEFAULT_THRESHOLD_DEGREES`]); the strict rule
///   ([`CleanRule::Strict`], raised on pytorch-metric-learning's tracker)
///   also drops it when $n_i \ne \hat k_{y_i}$: a sample nearest a
///   non-dominant sub-centre is taken for noise even when it lies within
///   $\tau$ of the dominant one. The strict set is a subset of the
///   official one.
///
/// ```
/// use arcface::{ArcFaceHead, CleanConfig, CleanRule, HeadConfig};
/// // one class, two sub-centres along x and y
/// let head = ArcFaceHead::<f64>::from_weight(HeadConfig::new(1, 2).with_subcenters(2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
/// let x = [1.0, 0.1, 1.0, -0.2, 0.1, 1.0, -1.0, 0.0];
/// let r = head.clean(&x, &[0, 0, 0, 0], &CleanConfig::default()).unwrap();
/// assert_eq!(r.nearest, vec![0, 0, 1, 1]);
/// assert_eq!(r.dominant, vec![0]); // 2 against 2: the lower index
/// assert_eq!(r.keep(CleanRule::Official), &[true, true, false, false]);
/// assert_eq!(r.kept(CleanRule::Strict), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaning {
    /// C.
    pub num_classes: usize,
    /// K.
    pub num_subcenters: usize,
    /// The threshold used, in degrees.
    pub threshold_degrees: f64,
    /// Each sample's class.
    pub labels: Vec<usize>,
    /// N×K: row `i` the cosines of sample `i` to its class's sub-centres.
    pub cosines: Vec<f64>,
    /// Each sample's nearest sub-centre of its class (lowest on ties).
    pub nearest: Vec<usize>,
    /// C×K: how many samples of class `c` are nearest its sub-centre `k`.
    pub counts: Vec<usize>,
    /// Each class's dominant sub-centre (most samples nearest; lowest on
    /// ties; 0 for a class without samples).
    pub dominant: Vec<usize>,
    /// Each sample's angle to its class's dominant sub-centre, in degrees.
    pub angles: Vec<f64>,
    /// Kept by [`CleanRule::Official`].
    pub keep_official: Vec<bool>,
    /// Kept by [`CleanRule::Strict`].
    pub keep_strict: Vec<bool>,
}

impl Cleaning {
    /// Decides everything from the N×K own-class cosines.
    fn decide(c: usize, k: usize, threshold: f64, labels: Vec<usize>, cosines: Vec<f64>) -> Self {
        let nearest: Vec<usize> = cosines
            .chunks_exact(k)
            .map(|row| (1..k).fold(0, |b, s| if row[s] > row[b] { s } else { b }))
            .collect();
        let mut counts = vec![0usize; c * k];
        for (&y, &s) in labels.iter().zip(&nearest) {
            counts[y * k + s] += 1;
        }
        let dominant: Vec<usize> = counts
            .chunks_exact(k)
            .map(|row| (1..k).fold(0, |b, s| if row[s] > row[b] { s } else { b }))
            .collect();
        let angles: Vec<f64> = labels
            .iter()
            .zip(cosines.chunks_exact(k))
            .map(|(&y, row)| row[dominant[y]].clamp(-1.0, 1.0).acos().to_degrees())
            .collect();
        let keep_official: Vec<bool> = angles.iter().map(|&a| a < threshold).collect();
        let keep_strict = keep_official
            .iter()
            .zip(labels.iter().zip(&nearest))
            .map(|(&kept, (&y, &s))| kept && s == dominant[y])
            .collect();
        Self {
            num_classes: c,
            num_subcenters: k,
            threshold_degrees: threshold,
            labels,
            cosines,
            nearest,
            counts,
            dominant,
            angles,
            keep_official,
            keep_strict,
        }
    }

    /// The keep mask of `rule`, one entry per sample.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 4).with_subcenters(3), 1).unwrap();
    /// let r = head.clean(&[1.0, 0.5, -0.2, 0.3], &[1], &CleanConfig::default()).unwrap();
    /// assert_eq!(r.keep(CleanRule::Strict).len(), 1);
    /// ```
    pub fn keep(&self, rule: CleanRule) -> &[bool] {
        match rule {
            CleanRule::Official => &self.keep_official,
            CleanRule::Strict => &self.keep_strict,
        }
    }

    /// How many samples `rule` keeps.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(1, 2).with_subcenters(2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
    /// let r = head.clean(&[1.0, 0.0, -1.0, 0.0], &[0, 0], &CleanConfig::default()).unwrap();
    /// assert_eq!(r.kept(CleanRule::Official), 1);
    /// ```
    pub fn kept(&self, rule: CleanRule) -> usize {
        self.keep(rule).iter().filter(|&&k| k).count()
    }
}

impl<T: Real> ArcFaceHead<T> {
    /// Finds each class's dominant sub-centre, each sample's angle to it and
    /// the keep masks of both rules (the maths is on [`Cleaning`]) for `features` (N×D) labelled `labels`, in one
    /// pass over the data, split over the head's threads (the result does
    /// not depend on their number).
    ///
    /// Errors, before anything is computed: a head with K = 1 (no
    /// sub-centres to compare), a threshold outside (0°, 180°), no samples,
    /// features not N×D, a label outside `0..C`, unusable weights; during
    /// the pass: a non-finite feature (naming the sample). The head is not
    /// changed either way.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, CleanConfig, Error, HeadConfig};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4).with_subcenters(3), 0).unwrap();
    /// let x = [0.1f32, 0.2, 0.3, 0.4, -0.4, 0.3, 0.2, 0.1];
    /// let r = head.clean(&x, &[2, 0], &CleanConfig::default()).unwrap();
    /// assert!(r.angles.iter().all(|a| (0.0..=180.0).contains(a)));
    /// assert!(head.clean(&x, &[2, 3], &CleanConfig::default()).is_err()); // label out of range
    /// let plain = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// assert!(matches!(plain.clean(&x, &[2, 0], &CleanConfig::default()),
    ///                  Err(Error::InvalidConfig { field: "num_subcenters", .. })));
    /// ```
    pub fn clean(&self, features: &[T], labels: &[i64], cfg: &CleanConfig) -> Result<Cleaning> {
        let (c, k, d) = self.clean_shape()?;
        cfg.validate()?;
        let n = labels.len();
        if n == 0 {
            return Err(Error::EmptyBatch);
        }
        check_len("features", features.len(), n.saturating_mul(d))?;
        check_labels(labels, c)?;
        self.check_weight()?;
        let mut cosines = try_filled(n * k, 0.0f64, "cleaning cosines")?;
        pass::own_class_cosines(self, features, labels, &mut cosines)?;
        let own: Vec<usize> = labels.iter().map(|&y| y as usize).collect();
        Ok(Cleaning::decide(c, k, cfg.threshold_degrees, own, cosines))
    }

    /// (C, K, D), or the error of a head without sub-centres.
    fn clean_shape(&self) -> Result<(usize, usize, usize)> {
        let cfg = self.config();
        if cfg.num_subcenters < 2 {
            return Err(invalid(
                "num_subcenters",
                format!(
                    "is {}; cleaning needs a head trained with sub-centres (K > 1)",
                    cfg.num_subcenters
                ),
            ));
        }
        Ok((cfg.num_classes, cfg.num_subcenters, cfg.in_channels))
    }

    /// A K = 1 head whose class `c` is sub-centre `dominant[c]` of this
    /// one (for example [`Cleaning::dominant`]), with the same margins,
    /// scale, loss, margin policy and threads. Errors: `dominant` not C
    /// long, or an index not below K.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig};
    /// let w = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0]; // C = 2, K = 2, D = 2
    /// let head = ArcFaceHead::<f64>::from_weight(HeadConfig::new(2, 2).with_subcenters(2), &w).unwrap();
    /// let single = head.to_single_centre(&[1, 0]).unwrap();
    /// assert_eq!(single.weight(), &[0.0, 1.0, -1.0, 0.0]);
    /// assert_eq!(single.config().num_subcenters, 1);
    /// assert!(head.to_single_centre(&[2, 0]).is_err());
    /// ```
    pub fn to_single_centre(&self, dominant: &[usize]) -> Result<ArcFaceHead<T>> {
        let cfg = self.config();
        let (c, k, d) = (cfg.num_classes, cfg.num_subcenters, cfg.in_channels);
        check_len("dominant", dominant.len(), c)?;
        if let Some((class, &s)) = dominant.iter().enumerate().find(|(_, &s)| s >= k) {
            return Err(invalid(
                "dominant",
                format!("names sub-centre {s} of class {class}, but the head has K = {k}"),
            ));
        }
        let w = self.weight();
        let mut rows = try_filled(c * d, T::ZERO, "weights")?;
        for (cls, (dst, &s)) in rows.chunks_exact_mut(d).zip(dominant).enumerate() {
            let r = cls * k + s;
            dst.copy_from_slice(&w[r * d..(r + 1) * d]);
        }
        let single = HeadConfig {
            num_subcenters: 1,
            ..cfg.clone()
        };
        Ok(ArcFaceHead::from_weight(single, &rows)?.with_threads(self.threads()))
    }
}
