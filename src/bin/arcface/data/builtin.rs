//! The built-in data sets: the UCI optical digits shipped in `data/`, and
//! a synthetic long-tailed set. Each has a fixed train/test split, and a
//! tag recorded in checkpoints so that `eval` and `predict` find the same
//! test split again.

use super::{split, Split};
use crate::memory::{try_vec, Need};
use crate::CliError;
use arcface::{Real, SplitMix64};
use std::io::Read;

/// Where training data came from (the checkpoint's `data` metadata).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Digits,
    Synthetic(SynthParams),
    Files,
}

impl Source {
    /// The tag stored in checkpoints.
    pub fn tag(&self) -> String {
        match self {
            Source::Digits => "digits".into(),
            Source::Synthetic(p) => p.tag(),
            Source::Files => "files".into(),
        }
    }

    /// The inverse of [`Source::tag`]; `None` for an unknown or out-of-range tag.
    pub fn from_tag(t: &str) -> Option<Self> {
        match t {
            "digits" => Some(Source::Digits),
            "files" => Some(Source::Files),
            _ => SynthParams::from_tag(t).map(Source::Synthetic),
        }
    }

    /// For people: the progress header and the summary table.
    pub fn describe(&self) -> String {
        match self {
            Source::Digits => "digits (UCI optical digits, CC BY 4.0)".into(),
            Source::Synthetic(p) => format!(
                "synthetic (long-tailed, {} classes, D = {})",
                p.classes, p.dim
            ),
            Source::Files => "files".into(),
        }
    }

    /// A built-in set's classes and dimension.
    pub fn shape(&self) -> Option<(usize, usize)> {
        match self {
            Source::Digits => Some((DIGITS_CLASSES, DIGITS_DIM)),
            Source::Synthetic(p) => Some((p.classes, p.dim)),
            Source::Files => None,
        }
    }

    /// What loading the set allocates (the digits' few hundred kilobytes
    /// are not counted).
    pub fn need<T: Real>(&self) -> Need {
        match self {
            Source::Synthetic(p) => p.need::<T>(),
            Source::Digits | Source::Files => Need::new(),
        }
    }

    /// A built-in set's (train, test) splits, raw (not standardised). The
    /// synthetic set is generated only once [`Source::need`] fits the
    /// memory the machine can give.
    pub fn load<T: Real>(&self) -> Result<(Split<T>, Split<T>), CliError> {
        match self {
            Source::Digits => digits(),
            Source::Synthetic(p) => {
                self.need::<T>().check(
                    &format!("generating the data set {}", p.tag()),
                    "; fewer --synthetic-classes or a smaller --synthetic-dim shrink it",
                )?;
                synthetic(*p)
            }
            Source::Files => Err(CliError::Usage("no built-in data set".into())),
        }
    }
}

// ---------------------------------------------------------------- digits

/// The UCI optical digits (CC BY 4.0; see data/README.md), gzip-compressed CSV.
static DIGITS_GZ: &[u8] = include_bytes!("../../../../data/digits.csv.gz");
const DIGITS_NAME: &str = "<embedded digits.csv.gz>";

/// The digits recipe's margin (every other default is upstream's): with 64
/// pixel features, upstream's 0.5 stalls a K = 1 head near 94 % (see README).
pub const DIGITS_MARGIN: f64 = 0.2;

/// Seed of the fixed digits train/test split.
pub const DIGITS_SPLIT_SEED: u64 = 0x0D16_1275;
/// The digits' classes and features (8×8 pixels).
const DIGITS_CLASSES: usize = 10;
const DIGITS_DIM: usize = 64;

/// Fraction of each digit held out as the test split.
const DIGITS_TEST_FRACTION: f64 = 0.2;

/// The digits set split 80/20 (stratified, fixed seed), not standardised.
pub fn digits<T: Real>() -> Result<(Split<T>, Split<T>), CliError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .map_err(|e| CliError::input(DIGITS_NAME, e.to_string()))?;
    let all =
        super::csv::table::<T>(&text, true, None).map_err(|e| CliError::input(DIGITS_NAME, e))?;
    split::stratified(all.into(), DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
}

// ---------------------------------------------------------------- synthetic

/// Parameters of the synthetic set (see [`synthetic`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthParams {
    pub classes: usize,
    pub dim: usize,
    pub seed: u64,
}

impl SynthParams {
    /// The defaults of `--synthetic-classes`, `--synthetic-dim`, `--synthetic-seed`.
    pub const DEFAULT: SynthParams = SynthParams {
        classes: 1000,
        dim: 128,
        seed: 0,
    };
    /// The fewest classes and dimensions.
    pub const MIN: usize = 2;
    /// The most classes.
    pub const MAX_CLASSES: usize = 100_000;
    /// The most dimensions.
    pub const MAX_DIM: usize = 4096;

    fn tag(&self) -> String {
        format!(
            "synthetic:classes={},dim={},seed={}",
            self.classes, self.dim, self.seed
        )
    }

    fn from_tag(tag: &str) -> Option<Self> {
        let rest = tag.strip_prefix("synthetic:")?;
        let mut p = SynthParams {
            classes: 0,
            dim: 0,
            seed: 0,
        };
        for kv in rest.split(',') {
            let (k, v) = kv.split_once('=')?;
            match k {
                "classes" => p.classes = v.parse().ok()?,
                "dim" => p.dim = v.parse().ok()?,
                "seed" => p.seed = v.parse().ok()?,
                _ => return None,
            }
        }
        let ok = (Self::MIN..=Self::MAX_CLASSES).contains(&p.classes)
            && (Self::MIN..=Self::MAX_DIM).contains(&p.dim);
        ok.then_some(p)
    }
}

/// Modes per class.
const SYNTH_MODES: usize = 3;
/// Probability of each mode (dominant, secondary, rare).
const SYNTH_MODE_P: [f64; SYNTH_MODES] = [0.6, 0.3, 0.1];
/// Training samples of the most frequent class, and of the rarest.
const SYNTH_N_MAX: f64 = 200.0;
const SYNTH_N_MIN: usize = 5;
/// Zipf exponent of the class frequencies.
const SYNTH_ALPHA: f64 = 0.5;
/// Noise radius relative to the unit mode direction.
const SYNTH_NOISE: f64 = 1.0;
/// Fraction of training labels replaced by a random other class.
const SYNTH_FLIP: f64 = 0.1;
/// Test samples per class (balanced, clean labels).
const SYNTH_TEST_PER_CLASS: usize = 10;
/// Mixed into `--synthetic-seed` so that seed 0 is not SplitMix64's state 0.
const SYNTH_SEED_SALT: u64 = 0x5EED_5EED_5EED_5EED;

/// The generator's random unit mode directions, `classes × SYNTH_MODES` rows of `dim`.
fn modes(rng: &mut SplitMix64, c: usize, d: usize) -> Result<Vec<f64>, CliError> {
    let mut modes = try_vec(c * SYNTH_MODES * d, "the synthetic set's mode directions")?;
    modes.resize(c * SYNTH_MODES * d, 0.0f64);
    for m in modes.chunks_exact_mut(d) {
        for v in m.iter_mut() {
            *v = rng.normal();
        }
        let n = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        m.iter_mut().for_each(|v| *v /= n);
    }
    Ok(modes)
}

/// Training samples of the class of frequency rank `rank` (0-based): a Zipf law.
fn count_at_rank(rank: usize) -> usize {
    ((SYNTH_N_MAX * ((rank + 1) as f64).powf(-SYNTH_ALPHA)).round() as usize).max(SYNTH_N_MIN)
}

/// Training samples per class: [`count_at_rank`] over the classes in random order.
fn class_counts(rng: &mut SplitMix64, c: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c).collect();
    rng.shuffle(&mut order);
    let mut counts = vec![0usize; c];
    for (rank, &cls) in order.iter().enumerate() {
        counts[cls] = count_at_rank(rank);
    }
    counts
}

impl SynthParams {
    /// Training and test samples of the set.
    pub fn samples(&self) -> (usize, usize) {
        let train = (0..self.classes).map(count_at_rank).sum();
        (train, self.classes * SYNTH_TEST_PER_CLASS)
    }

    /// What generating the set in `T` allocates: the mode directions and
    /// both splits (features and labels).
    pub fn need<T: Real>(&self) -> Need {
        let (train, test) = self.samples();
        let (c, d, n) = (
            self.classes as u128,
            self.dim as u128,
            (train + test) as u128,
        );
        let mut need = Need::new();
        need.add("mode directions", c * SYNTH_MODES as u128 * d, 8)
            .add("features", n * d, std::mem::size_of::<T>())
            .add("labels", n, 8);
        need
    }
}

/// Long-tailed, noisy, clustered embeddings on the unit sphere.
///
/// Each class has three modes (random directions, near-orthogonal in high
/// dimension) drawn with probabilities 0.6 / 0.3 / 0.1, and a sample is a
/// mode plus isotropic Gaussian noise (of about the mode's length), normalised.
/// Training counts follow a Zipf law (200 samples for the most frequent class
/// down to 5, exponent 0.5, classes in random order) and 10 % of the training labels
/// are flipped to a random other class. The test split is balanced (10 per
/// class) with clean labels, so the tail counts as much as the head.
///
/// The caller checks [`SynthParams::need`] first; the splits' buffers are
/// reserved fallibly all the same.
pub fn synthetic<T: Real>(p: SynthParams) -> Result<(Split<T>, Split<T>), CliError> {
    let (c, d) = (p.classes, p.dim);
    let (n_train, n_test) = p.samples();
    let mut rng = SplitMix64::new(p.seed ^ SYNTH_SEED_SALT);
    let modes = modes(&mut rng, c, d)?;
    let counts = class_counts(&mut rng, c);
    let sigma = SYNTH_NOISE / (d as f64).sqrt();
    let sample = |rng: &mut SplitMix64, cls: usize, out: &mut Vec<T>| {
        let u = rng.next_f64();
        let mut j = 0;
        let mut acc = SYNTH_MODE_P[0];
        while u >= acc && j + 1 < SYNTH_MODES {
            j += 1;
            acc += SYNTH_MODE_P[j];
        }
        let mode = &modes[(cls * SYNTH_MODES + j) * d..(cls * SYNTH_MODES + j + 1) * d];
        let v: Vec<f64> = mode.iter().map(|m| m + sigma * rng.normal()).collect();
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        out.extend(v.iter().map(|x| T::from_f64(x / n)));
    };
    let mut train = Split::empty(d);
    train.x = try_vec(n_train * d, "the synthetic training features")?;
    train.y = try_vec(n_train, "the synthetic training labels")?;
    for (cls, &k) in counts.iter().enumerate() {
        for _ in 0..k {
            sample(&mut rng, cls, &mut train.x);
            let label = if c > 1 && rng.next_f64() < SYNTH_FLIP {
                let other = rng.below(c - 1);
                if other >= cls {
                    other + 1
                } else {
                    other
                }
            } else {
                cls
            };
            train.y.push(label as i64);
        }
    }
    let mut test = Split::empty(d);
    test.x = try_vec(n_test * d, "the synthetic test features")?;
    test.y = try_vec(n_test, "the synthetic test labels")?;
    for cls in 0..c {
        for _ in 0..SYNTH_TEST_PER_CLASS {
            sample(&mut rng, cls, &mut test.x);
            test.y.push(cls as i64);
        }
    }
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digits_decompress_and_split_as_documented() {
        let (train, test) = digits::<f32>().unwrap();
        assert_eq!((train.len(), test.len(), train.d), (1438, 359, 64));
        assert_eq!(Source::Digits.shape(), Some((10, train.d)));
        assert!(train.y.iter().chain(&test.y).all(|l| (0..10).contains(l)));
    }

    #[test]
    fn tags_round_trip_and_refuse_out_of_range_sets() {
        let p = SynthParams {
            classes: 40,
            dim: 32,
            seed: 9,
        };
        for s in [Source::Digits, Source::Files, Source::Synthetic(p)] {
            assert_eq!(Source::from_tag(&s.tag()), Some(s));
        }
        assert_eq!(Source::from_tag("synthetic:classes=1,dim=8,seed=0"), None);
        assert_eq!(
            Source::from_tag("synthetic:classes=8,dim=9999,seed=0"),
            None
        );
        assert_eq!(Source::from_tag("mnist"), None);
    }

    #[test]
    fn synthetic_sets_are_deterministic_and_unit_norm() {
        let p = SynthParams {
            classes: 5,
            dim: 8,
            seed: 1,
        };
        let (a, t) = synthetic::<f64>(p).unwrap();
        let (b, _) = synthetic::<f64>(p).unwrap();
        assert_eq!(a.x, b.x);
        assert_eq!((a.len(), t.len()), p.samples());
        assert_eq!((a.x.capacity(), t.x.capacity()), (a.x.len(), t.x.len()));
        assert_eq!(t.len(), 5 * SYNTH_TEST_PER_CLASS);
        assert_eq!(SynthParams::DEFAULT.samples(), (12_362, 10_000));
        for row in a.x.chunks_exact(8) {
            assert!((row.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}
