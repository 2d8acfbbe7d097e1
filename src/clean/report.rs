//! The per-class summary of a [`Cleaning`]: samples, dominant sub-centre,
//! how many each rule keeps, and the angles' spread.

use super::Cleaning;

/// Minimum, mean and maximum of a class's angles to its dominant
/// sub-centre, in degrees.
///
/// ```
/// # use arcface::*;
/// let head = ArcFaceHead::<f64>::from_weight(HeadConfig::new(1, 2).with_subcenters(2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
/// let r = head.clean(&[1.0, 0.0, 1.0, 1.0], &[0, 0], &CleanConfig::default()).unwrap();
/// let a = r.classes()[0].angles.unwrap();
/// assert!(a.min.abs() < 1e-9 && (a.max - 45.0).abs() < 1e-9 && (a.mean - 22.5).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AngleStats {
    /// The smallest angle.
    pub min: f64,
    /// The mean angle.
    pub mean: f64,
    /// The largest angle.
    pub max: f64,
}

/// One class of a [`Cleaning`].
///
/// ```
/// # use arcface::*;
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2).with_subcenters(2), 5).unwrap();
/// let r = head.clean(&[1.0, 0.0, 0.0, 1.0], &[2, 2], &CleanConfig::default()).unwrap();
/// let classes = r.classes();
/// assert_eq!((classes[2].samples, classes[0].samples), (2, 0));
/// assert!(classes[0].angles.is_none());
/// assert_eq!(classes[2].dropped(CleanRule::Official), 2 - classes[2].kept_official);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClassCleaning {
    /// The class.
    pub class: usize,
    /// Its samples.
    pub samples: usize,
    /// Its dominant sub-centre.
    pub dominant: usize,
    /// How many of its samples are nearest each of its K sub-centres.
    pub nearest_counts: Vec<usize>,
    /// Samples the official rule keeps.
    pub kept_official: usize,
    /// Samples the strict rule keeps.
    pub kept_strict: usize,
    /// Its samples' angles to the dominant sub-centre (`None` without samples).
    pub angles: Option<AngleStats>,
}

impl ClassCleaning {
    /// Samples `rule` drops.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(1, 2).with_subcenters(2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
    /// let r = head.clean(&[1.0, 0.0, -1.0, 0.0], &[0, 0], &CleanConfig::default()).unwrap();
    /// assert_eq!(r.classes()[0].dropped(CleanRule::Strict), 1);
    /// ```
    pub fn dropped(&self, rule: super::CleanRule) -> usize {
        self.samples
            - match rule {
                super::CleanRule::Official => self.kept_official,
                super::CleanRule::Strict => self.kept_strict,
            }
    }
}

impl Cleaning {
    /// The per-class summary, one entry per class in order.
    ///
    /// ```
    /// # use arcface::*;
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 2).with_subcenters(3), 0).unwrap();
    /// let r = head.clean(&[1.0, 0.0, 0.3, 0.7], &[1, 3], &CleanConfig::default()).unwrap();
    /// assert_eq!(r.classes().len(), 4);
    /// ```
    pub fn classes(&self) -> Vec<ClassCleaning> {
        let (c, k) = (self.num_classes, self.num_subcenters);
        let mut out: Vec<ClassCleaning> = (0..c)
            .map(|class| ClassCleaning {
                class,
                samples: 0,
                dominant: self.dominant[class],
                nearest_counts: self.counts[class * k..(class + 1) * k].to_vec(),
                kept_official: 0,
                kept_strict: 0,
                angles: None,
            })
            .collect();
        for (i, &y) in self.labels.iter().enumerate() {
            let e = &mut out[y];
            let a = self.angles[i];
            e.samples += 1;
            e.kept_official += usize::from(self.keep_official[i]);
            e.kept_strict += usize::from(self.keep_strict[i]);
            e.angles = Some(match e.angles {
                None => AngleStats {
                    min: a,
                    mean: a,
                    max: a,
                },
                // `mean` holds the sum until the end
                Some(s) => AngleStats {
                    min: s.min.min(a),
                    mean: s.mean + a,
                    max: s.max.max(a),
                },
            });
        }
        for e in &mut out {
            if let Some(s) = &mut e.angles {
                s.mean /= e.samples as f64;
            }
        }
        out
    }
}
