//! The class sampler of a PartialFC step: every positive, then classes
//! drawn uniformly without replacement from the others, seeded per step.

use crate::error::{check_labels, Result};
use crate::memory::try_filled;
use crate::rng::SplitMix64;

/// Marks a class that is not kept.
const NONE: u32 = u32::MAX;

/// The kept set of the last step and the tables that draw it; every buffer
/// is sized at construction, so sampling allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    seed: u64,
    /// A permutation of the classes, the identity between steps.
    perm: Vec<u32>,
    /// The positions swapped by the last draw, to undo it.
    swaps: Vec<u32>,
    /// Per class, its position in `kept`, or `NONE`.
    slot: Vec<u32>,
    /// The kept classes in ascending order (the positives and the drawn
    /// ones together).
    kept: Vec<u32>,
    /// How many of `kept` are positives.
    positives: usize,
}

impl Sampler {
    /// A sampler over `num_classes` (< 2³²) classes keeping at most
    /// `kept_cap` and seeing at most `batch_cap` labels a step.
    pub(crate) fn new(
        num_classes: usize,
        kept_cap: usize,
        batch_cap: usize,
        seed: u64,
    ) -> Result<Self> {
        let mut perm = try_filled(num_classes, 0u32, "sampler permutation")?;
        for (i, p) in perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        let mut swaps = Vec::new();
        let mut kept = Vec::new();
        let grow = |v: &mut Vec<u32>, n: usize| {
            v.try_reserve_exact(n)
                .map_err(|_| crate::memory::out_of_memory::<u32>("sampler", n as u128))
        };
        grow(&mut swaps, kept_cap.saturating_add(batch_cap))?;
        grow(&mut kept, kept_cap.max(batch_cap))?;
        Ok(Self {
            seed,
            perm,
            swaps,
            slot: try_filled(num_classes, NONE, "sampler slots")?,
            kept,
            positives: 0,
        })
    }

    /// The generator of step `step`: the seed and the step hashed together,
    /// so that the draws of a step depend on nothing else.
    fn rng(&self, step: u64) -> SplitMix64 {
        let key = SplitMix64::new(step).next_u64() ^ self.seed;
        SplitMix64::new(SplitMix64::new(key).next_u64())
    }

    /// Draws the kept set of step `step` for a batch with `labels` (checked
    /// first: an error changes nothing): every label's class, then uniform
    /// draws without replacement from the classes not `excluded` until
    /// `target` classes are kept (or all positives, if they are more; or
    /// every class not excluded, if they are fewer), then sorted. The labels
    /// must fit the batch capacity and name no excluded class.
    pub(crate) fn sample(
        &mut self,
        labels: &[i64],
        target: usize,
        step: u64,
        excluded: Option<&[bool]>,
    ) -> Result<()> {
        let c = self.perm.len();
        check_labels(labels, c)?;
        for &k in &self.kept {
            self.slot[k as usize] = NONE;
        }
        self.kept.clear();
        for &l in labels {
            let l = l as usize;
            if self.slot[l] == NONE {
                self.slot[l] = self.kept.len() as u32;
                self.kept.push(l as u32);
            }
        }
        self.positives = self.kept.len();
        let want = target.min(c);
        let mut rng = self.rng(step);
        let mut i = 0;
        while self.kept.len() < want && i < c {
            let j = i + rng.below(c - i);
            self.perm.swap(i, j);
            self.swaps.push(j as u32);
            let class = self.perm[i];
            let out = excluded.is_some_and(|e| e[class as usize]);
            if self.slot[class as usize] == NONE && !out {
                self.slot[class as usize] = self.kept.len() as u32;
                self.kept.push(class);
            }
            i += 1;
        }
        // undo the swaps, newest first: `perm` is the identity again
        for (i, &j) in self.swaps.iter().enumerate().rev() {
            self.perm.swap(i, j as usize);
        }
        self.swaps.clear();
        // ascending, as PartialFC v2 sorts its kept indices: the step then
        // walks the head's rows (and the optimiser's) in memory order
        self.kept.sort_unstable();
        for (j, &k) in self.kept.iter().enumerate() {
            self.slot[k as usize] = j as u32;
        }
        Ok(())
    }

    /// The kept classes of the last step.
    pub(crate) fn kept(&self) -> &[u32] {
        &self.kept
    }

    /// How many of the kept classes are positives.
    pub(crate) fn positives(&self) -> usize {
        self.positives
    }

    /// Writes each label's position in the kept set into `out`.
    pub(crate) fn remap(&self, labels: &[i64], out: &mut [i64]) {
        for (o, &l) in out.iter_mut().zip(labels) {
            *o = i64::from(self.slot[l as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positives_draws_distinct_classes_and_restores_the_permutation() {
        let mut s = Sampler::new(50, 20, 8, 3).unwrap();
        for step in 0..30 {
            s.sample(&[4, 9, 4, 49], 20, step, None).unwrap();
            let kept = s.kept();
            assert_eq!(kept.len(), 20);
            assert!([4, 9, 49].iter().all(|c| kept.contains(c)));
            // ascending and distinct
            assert!(kept.windows(2).all(|p| p[0] < p[1]));
            // each label maps to its class's position
            let mut at = [0i64; 4];
            s.remap(&[4, 9, 4, 49], &mut at);
            assert!(at
                .iter()
                .zip([4, 9, 4, 49])
                .all(|(&j, c)| kept[j as usize] == c));
            assert!(s.perm.iter().enumerate().all(|(i, &p)| p as usize == i));
        }
        // more positives than the target: all kept
        s.sample(&[1, 2, 3, 4, 5], 2, 0, None).unwrap();
        assert_eq!((s.kept().len(), s.positives()), (5, 5));
        assert!(s.sample(&[50], 2, 0, None).is_err());
    }

    #[test]
    fn draws_are_uniform_over_the_non_positives() {
        // 10 classes, class 0 positive, 3 more drawn: each other class is
        // kept with probability 1/3; 9000 steps give 3000 ± 3·43
        let mut s = Sampler::new(10, 4, 1, 11).unwrap();
        let mut count = [0usize; 10];
        for step in 0..9000 {
            s.sample(&[0], 4, step, None).unwrap();
            for &k in s.kept() {
                count[k as usize] += 1;
            }
        }
        assert_eq!(count[0], 9000);
        for &n in &count[1..] {
            assert!((2870..=3130).contains(&n), "{count:?}");
        }
    }

    #[test]
    fn the_same_seed_and_step_give_the_same_set() {
        let mut a = Sampler::new(1000, 100, 4, 5).unwrap();
        let mut b = Sampler::new(1000, 100, 4, 5).unwrap();
        a.sample(&[1, 2], 100, 7, None).unwrap();
        b.sample(&[3], 100, 6, None).unwrap();
        b.sample(&[1, 2], 100, 7, None).unwrap();
        assert_eq!(a.kept(), b.kept());
    }

    #[test]
    fn excluded_classes_are_never_drawn() {
        let mut s = Sampler::new(12, 12, 2, 4).unwrap();
        let mut out = [false; 12];
        for c in [0, 3, 5, 6, 11] {
            out[c] = true;
        }
        for step in 0..50 {
            // 7 classes are not excluded: a target of 12 keeps exactly them
            s.sample(&[2], 12, step, Some(&out)).unwrap();
            let mut kept = s.kept().to_vec();
            kept.sort_unstable();
            assert_eq!(kept, [1, 2, 4, 7, 8, 9, 10]);
            s.sample(&[9], 4, step, Some(&out)).unwrap();
            assert_eq!(s.kept().len(), 4);
            assert!(s.kept().iter().all(|&c| !out[c as usize]));
        }
    }
}
