//! The seeded, stratified hold-out split (`--val-fraction`, and the digits'
//! fixed test split).

use super::Split;
use arcface::SplitMix64;
use std::collections::BTreeMap;

/// A stratified split: about `fraction` of each class (rounded) goes to the
/// second part, chosen by a shuffle seeded with `seed`; both parts keep the
/// original order.
pub fn stratified<T: Copy>(all: &Split<T>, fraction: f64, seed: u64) -> (Split<T>, Split<T>) {
    let d = all.d;
    let mut by_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &l) in all.y.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut rng = SplitMix64::new(seed);
    let mut held = vec![false; all.y.len()];
    for idx in by_class.values_mut() {
        rng.shuffle(idx);
        let k = (idx.len() as f64 * fraction).round() as usize;
        for &i in &idx[..k.min(idx.len())] {
            held[i] = true;
        }
    }
    let (mut a, mut b) = (Split::empty(d), Split::empty(d));
    for (i, &h) in held.iter().enumerate() {
        let s = if h { &mut b } else { &mut a };
        s.x.extend_from_slice(&all.x[i * d..(i + 1) * d]);
        s.y.push(all.y[i]);
    }
    (a, b)
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
        let (a, b) = stratified(&all, 0.2, 7);
        assert_eq!((a.len(), b.len()), (32, 8));
        for c in 0..4 {
            assert_eq!(b.y.iter().filter(|&&l| l == c).count(), 2);
        }
        assert!(a.x.windows(2).all(|w| w[0] < w[1]) && b.x.windows(2).all(|w| w[0] < w[1]));
        let (a2, _) = stratified(&all, 0.2, 7);
        assert_eq!(a.x, a2.x);
    }
}
