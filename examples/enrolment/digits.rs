//! The shipped UCI digits (`data/digits.csv.gz`: 1797 rows of 64 pixel
//! counts and a label), decoded the way the program's built-in `digits` set
//! is, and split for the enrolment experiment.

use arcface::SplitMix64;
use std::io::Read;

/// The shipped file (CC BY 4.0; see data/README.md).
static DIGITS_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Pixels per sample (8×8) and classes.
pub const D: usize = 64;
pub const CLASSES: usize = 10;

/// Every sample: features (N×64, row-major) and labels.
pub struct Digits {
    pub x: Vec<f64>,
    pub y: Vec<usize>,
}

/// Decodes the shipped file.
pub fn load() -> Digits {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .expect("the shipped digits decompress");
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Vec<f64> = line
            .split(',')
            .map(|f| f.trim().parse().expect("a number"))
            .collect();
        assert_eq!(v.len(), D + 1, "64 pixels and a label per row");
        x.extend_from_slice(&v[..D]);
        y.push(v[D] as usize);
    }
    Digits { x, y }
}

/// Indices of each class's samples.
pub fn by_class(y: &[usize]) -> Vec<Vec<usize>> {
    let mut v = vec![Vec::new(); CLASSES];
    for (i, &l) in y.iter().enumerate() {
        v[l].push(i);
    }
    v
}

/// A stratified split of each class's indices: about `test_fraction` of
/// each class (rounded) to the test part, chosen by a shuffle from `rng`;
/// both parts in index order.
pub fn stratified(
    classes: &[Vec<usize>],
    test_fraction: f64,
    rng: &mut SplitMix64,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for idx in classes {
        let mut idx = idx.clone();
        rng.shuffle(&mut idx);
        let k = (idx.len() as f64 * test_fraction).round() as usize;
        let (mut te, mut tr) = (idx[..k].to_vec(), idx[k..].to_vec());
        te.sort_unstable();
        tr.sort_unstable();
        test.push(te);
        train.push(tr);
    }
    (train, test)
}

/// Per-column standardisation fitted on some rows (as the program does for
/// the digits: columns constant there are only centred).
pub struct Standardize {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Standardize {
    pub fn fit(x: &[f64], rows: &[usize]) -> Self {
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0; D];
        for &i in rows {
            for (m, v) in mean.iter_mut().zip(&x[i * D..(i + 1) * D]) {
                *m += v / n;
            }
        }
        let mut std = vec![0.0; D];
        for &i in rows {
            for ((s, v), m) in std.iter_mut().zip(&x[i * D..(i + 1) * D]).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        for s in &mut std {
            *s = if s.sqrt() > 1e-12 { s.sqrt() } else { 1.0 };
        }
        Standardize { mean, std }
    }

    /// The standardised rows `rows` of `x`, as `T`, with `label(i)` for each.
    pub fn gather<T: arcface::Real>(
        &self,
        x: &[f64],
        rows: &[usize],
        label: impl Fn(usize) -> i64,
    ) -> (Vec<T>, Vec<i64>) {
        let mut out = Vec::with_capacity(rows.len() * D);
        for &i in rows {
            for ((v, m), s) in x[i * D..(i + 1) * D].iter().zip(&self.mean).zip(&self.std) {
                out.push(T::from_f64((v - m) / s));
            }
        }
        (out, rows.iter().map(|&i| label(i)).collect())
    }
}
