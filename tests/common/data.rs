//! Seeded random data for tests, from the crate's one generator
//! ([`SplitMix64`]), so that a seed means the same data in every test and
//! on every platform.

use arcface::SplitMix64;

/// `n` values uniform in [−1, 1) (on the 2⁻⁵³ grid, rounded to f32).
pub fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut g = SplitMix64::new(seed);
    (0..n).map(|_| uniform_one(&mut g)).collect()
}

fn uniform_one(g: &mut SplitMix64) -> f32 {
    (g.next_f64() * 2.0 - 1.0) as f32
}

/// Noisy clusters: `c` class centres uniform in [−1, 1)^`d`, then `n`
/// samples, sample `i` of class `i mod c` at its centre plus `noise` times
/// a uniform draw in [−1, 1) per channel. Returns the row-major `n`×`d`
/// features and the labels. The same seed and a smaller `n` give a prefix
/// of the same data.
pub fn clusters(c: usize, d: usize, n: usize, noise: f32, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut g = SplitMix64::new(seed);
    let centres: Vec<f32> = (0..c * d).map(|_| uniform_one(&mut g)).collect();
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let cls = i % c;
        x.extend((0..d).map(|j| centres[cls * d + j] + noise * uniform_one(&mut g)));
        y.push(cls as i64);
    }
    (x, y)
}
