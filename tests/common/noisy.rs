//! Synthetic embeddings built like sub-centre ArcFace's noisy web data
//! (Deng et al., ECCV 2020): one mode per class, and heavy label noise of
//! both kinds the paper describes. Closed-set noise: samples of another
//! class labelled as this one. Open-set noise: samples of an identity
//! that is no class at all, labelled as this one. As with names searched
//! on the web, each class's wrong samples come from a few consistent
//! sources (a confusable class, an impostor identity), so that the noise
//! forms clusters of its own rather than a uniform haze.
//!
//! Shared by the tests (`mod common;`) and the `cleaning` example
//! (`#[path]`); everything is drawn from `arcface::SplitMix64`.

use arcface::SplitMix64;

/// The shape of a noisy set.
#[derive(Debug, Clone, Copy)]
pub struct NoisySpec {
    /// Classes C.
    pub classes: usize,
    /// Dimension D.
    pub dim: usize,
    /// Training samples per class label (clean and noisy together).
    pub per_class: usize,
    /// Clean test samples per class.
    pub test_per_class: usize,
    /// Fraction of each class's samples that belong to another class.
    pub closed: f64,
    /// Fraction of each class's samples that belong to no class.
    pub open: f64,
    /// Standard deviation of each sample's Gaussian spread around its
    /// mode, in total (per channel: spread / √D); modes are unit vectors.
    pub spread: f64,
    /// Seed.
    pub seed: u64,
}

/// A training set with its injected noise marked, and a clean test set.
#[derive(Debug, Clone)]
pub struct NoisySet {
    pub d: usize,
    pub classes: usize,
    pub train_x: Vec<f32>,
    pub train_y: Vec<i64>,
    /// Per training sample: true where its label is wrong (either kind).
    pub noise: Vec<bool>,
    pub test_x: Vec<f32>,
    pub test_y: Vec<i64>,
}

/// A unit vector uniform on the sphere.
fn direction(g: &mut SplitMix64, d: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..d).map(|_| g.normal()).collect();
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

/// A sample around `mode`.
fn sample(g: &mut SplitMix64, mode: &[f64], spread: f64, out: &mut Vec<f32>) {
    let s = spread / (mode.len() as f64).sqrt();
    out.extend(mode.iter().map(|m| (m + s * g.normal()) as f32));
}

/// The set of `spec`: class `c` has `per_class` samples labelled `c`, of
/// which `round(closed · per_class)` come from its confusable class (a
/// fixed other class drawn per class) and `round(open · per_class)` from
/// its impostor (a mode of no class, one per class); the rest from its own
/// mode. Samples are interleaved across classes.
pub fn noisy_web(spec: &NoisySpec) -> NoisySet {
    let (c, d) = (spec.classes, spec.dim);
    let mut g = SplitMix64::new(spec.seed);
    let modes: Vec<Vec<f64>> = (0..c).map(|_| direction(&mut g, d)).collect();
    let impostors: Vec<Vec<f64>> = (0..c).map(|_| direction(&mut g, d)).collect();
    let confuser: Vec<usize> = (0..c).map(|k| (k + 1 + g.below(c - 1)) % c).collect();
    let n_closed = (spec.closed * spec.per_class as f64).round() as usize;
    let n_open = (spec.open * spec.per_class as f64).round() as usize;
    let mut set = NoisySet {
        d,
        classes: c,
        train_x: Vec::with_capacity(c * spec.per_class * d),
        train_y: Vec::with_capacity(c * spec.per_class),
        noise: Vec::with_capacity(c * spec.per_class),
        test_x: Vec::with_capacity(c * spec.test_per_class * d),
        test_y: Vec::with_capacity(c * spec.test_per_class),
    };
    for j in 0..spec.per_class {
        for k in 0..c {
            // a deterministic mix: sample j of class k is closed-set noise
            // for the first n_closed j, open-set for the next n_open
            let (mode, noisy) = if j < n_closed {
                (&modes[confuser[k]], true)
            } else if j < n_closed + n_open {
                (&impostors[k], true)
            } else {
                (&modes[k], false)
            };
            sample(&mut g, mode, spec.spread, &mut set.train_x);
            set.train_y.push(k as i64);
            set.noise.push(noisy);
        }
    }
    for _ in 0..spec.test_per_class {
        for (k, mode) in modes.iter().enumerate() {
            sample(&mut g, mode, spec.spread, &mut set.test_x);
            set.test_y.push(k as i64);
        }
    }
    set
}

/// The head and training settings every recipe shares.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    /// Epochs of each training run.
    pub epochs: usize,
    /// Sub-centres of the first, noise-finding run (the paper: 3).
    pub subcenters: usize,
    /// Logit scale S.
    pub scale: f64,
    /// Additive angular margin m.
    pub margin: f64,
    /// The cleaning threshold, degrees.
    pub threshold: f64,
    /// Shuffling and initialisation seed of every run.
    pub seed: u64,
}

/// What the three recipes reach on the clean test set, and how the
/// dropped set compares with the injected noise.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Test top-1 of K = 1 trained on the noisy set.
    pub k1: f64,
    /// Test top-1 of K = `subcenters` trained on the noisy set.
    pub kn: f64,
    /// Test top-1 of K = 1 retrained on what the cleaning kept.
    pub cleaned: f64,
    /// Dropped samples that were injected noise, over all dropped.
    pub precision: f64,
    /// Injected noise that was dropped, over all injected noise.
    pub recall: f64,
    /// Fraction of the training set kept.
    pub kept: f64,
    /// Precision, recall and kept fraction of the strict rule (reported,
    /// not retrained on).
    pub strict: (f64, f64, f64),
}

/// Precision and recall of the samples `keep` drops against `noise`, and
/// the fraction kept.
pub fn dropped_vs_noise(keep: &[bool], noise: &[bool]) -> (f64, f64, f64) {
    let hit = keep.iter().zip(noise).filter(|(&k, &n)| !k && n).count();
    let dropped = keep.iter().filter(|&&k| !k).count();
    let injected = noise.iter().filter(|&&n| n).count();
    (
        hit as f64 / dropped.max(1) as f64,
        hit as f64 / injected.max(1) as f64,
        1.0 - dropped as f64 / keep.len().max(1) as f64,
    )
}

/// A head of `k` sub-centres trained on (`x`, `y`) with `r`'s settings.
pub fn train(
    x: &[f32],
    y: &[i64],
    classes: usize,
    d: usize,
    k: usize,
    r: &Recipe,
) -> arcface::ArcFaceHead<f32> {
    use arcface::{ArcFaceHead, Dataset, HeadConfig, Margins, TrainConfig, Trainer};
    let cfg = HeadConfig::new(classes, d)
        .with_subcenters(k)
        .with_scale(r.scale)
        .with_margins(Margins::Uniform(r.margin));
    let head = ArcFaceHead::<f32>::new(cfg, r.seed).expect("head");
    let tc = TrainConfig {
        epochs: r.epochs,
        seed: r.seed,
        eval_every: 0,
        train_accuracy: false,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head, tc).expect("trainer");
    t.fit(Dataset::new(x, y), None, |_| {
        std::ops::ControlFlow::Continue(())
    })
    .expect("training");
    t.into_parts().0
}

/// Top-1 of `head` on (`x`, `y`).
pub fn top1(head: &arcface::ArcFaceHead<f32>, x: &[f32], y: &[i64]) -> f64 {
    let p = head.predict(x).expect("predict");
    let right = p
        .labels
        .iter()
        .zip(y)
        .filter(|(a, b)| **a as i64 == **b)
        .count();
    right as f64 / y.len() as f64
}

/// K = 1; K = `subcenters`; and K = `subcenters`, clean (official rule),
/// K = 1 on the kept samples: each trained with the same epochs and seed.
pub fn run_recipes(set: &NoisySet, r: &Recipe) -> Outcome {
    use arcface::{CleanConfig, CleanRule};
    let (c, d) = (set.classes, set.d);
    let k1 = train(&set.train_x, &set.train_y, c, d, 1, r);
    let kn = train(&set.train_x, &set.train_y, c, d, r.subcenters, r);
    let cleaning = kn
        .clean(&set.train_x, &set.train_y, &CleanConfig::new(r.threshold))
        .expect("clean");
    let keep = cleaning.keep(CleanRule::Official);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
        x.extend_from_slice(&set.train_x[i * d..(i + 1) * d]);
        y.push(set.train_y[i]);
    }
    let cleaned = train(&x, &y, c, d, 1, r);
    let (precision, recall, kept) = dropped_vs_noise(keep, &set.noise);
    Outcome {
        k1: top1(&k1, &set.test_x, &set.test_y),
        kn: top1(&kn, &set.test_x, &set.test_y),
        cleaned: top1(&cleaned, &set.test_x, &set.test_y),
        precision,
        recall,
        kept,
        strict: dropped_vs_noise(cleaning.keep(CleanRule::Strict), &set.noise),
    }
}
