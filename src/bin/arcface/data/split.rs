//! The seeded, stratified hold-out split (`--val-fraction`, and the digits'
//! fixed test split).

use super::Split;
use crate::memory::try_vec;
use crate::CliError;
use arcface::SplitMix64;
use std::collections::BTreeMap;

/// A stratified split: about `fraction` of each class (rounded) goes to the
/// second part, chosen by a shuffle seeded with `seed`; both parts keep the
/// original order. The first part is `all` compacted in place, so the split
/// costs only the second part's memory.
pub fn stratified<T: Copy>(
    mut all: Split<T>,
    fraction: f64,
    seed: u64,
) -> Result<(Split<T>, Split<T>), CliError> {
    let d = all.d;
    let n = all.y.len();
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for &l in &all.y {
        *counts.entry(l).or_default() += 1;
    }
    let mut by_class = BTreeMap::new();
    for (&l, &k) in &counts {
        by_class.insert(l, try_vec::<usize>(k, "the hold-out split")?);
    }
    for (i, &l) in all.y.iter().enumerate() {
        if let Some(v) = by_class.get_mut(&l) {
            v.push(i);
        }
    }
    let mut rng = SplitMix64::new(seed);
    let mut held = try_vec(n, "the hold-out split")?;
    held.resize(n, false);
    for idx in by_class.values_mut() {
        rng.shuffle(idx);
        let k = (idx.len() as f64 * fraction).round() as usize;
        for &i in &idx[..k.min(idx.len())] {
            held[i] = true;
        }
    }
    let n_held = held.iter().filter(|&&h| h).count();
    let mut b = Split::empty(d);
    b.x = try_vec(n_held * d, "the hold-out split")?;
    b.y = try_vec(n_held, "the hold-out split")?;
    let mut kept = 0;
    for (i, &h) in held.iter().enumerate() {
        if h {
            b.x.extend_from_slice(&all.x[i * d..(i + 1) * d]);
            b.y.push(all.y[i]);
        } else {
            all.x.copy_within(i * d..(i + 1) * d, kept * d);
            all.y[kept] = all.y[i];
            kept += 1;
        }
    }
    all.x.truncate(kept * d);
    all.y.truncate(kept);
    Ok((all, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_gives_its_share_and_order_is_kept() {
        let y: Vec<i64> = (0..40).map(|i| i % 4).collect();
        let all = Split {
            x: (0..40).map(|i| i as f32).collect(),
            y,
            d: 1,
        };
        let (a, b) = stratified(all.clone(), 0.2, 7).unwrap();
        assert_eq!((a.len(), b.len()), (32, 8));
        for c in 0..4 {
            assert_eq!(b.y.iter().filter(|&&l| l == c).count(), 2);
        }
        assert!(a.x.windows(2).all(|w| w[0] < w[1]) && b.x.windows(2).all(|w| w[0] < w[1]));
        let (a2, _) = stratified(all, 0.2, 7).unwrap();
        assert_eq!(a.x, a2.x);
    }
}
