//! `AdaptiveMargins::compute` on arbitrary labels, parameters and class
//! counts.

use super::bytes::{decode_label, decode_margin_value, decode_value, Bytes};
use arcface::{AdaptiveMargins, Error};

#[derive(Debug, Clone)]
pub struct AdaptiveCase {
    pub params: AdaptiveMargins,
    pub labels: Vec<i64>,
    pub num_classes: usize,
}

/// `num_classes` is 0..=64, or larger than any `Vec<f64>` can be
/// (> `isize::MAX / 8`), where only a typed error is possible. Sizes in
/// between are legal and make a result of that length, so a fuzzer would
/// only measure the allocator there.
pub fn decode_adaptive(data: &[u8]) -> AdaptiveCase {
    let mut b = Bytes::new(data);
    let num_classes = match b.u8() {
        0xF0 => usize::MAX,
        0xF1 => isize::MAX as usize,
        0xF2 => (isize::MAX as usize) / 8 + 1 + b.u8() as usize,
        t => t as usize % 65,
    };
    let params = match b.u8() % 4 {
        0 => AdaptiveMargins::default(),
        _ => AdaptiveMargins {
            margin_min: decode_margin_value(&mut b),
            margin_max: decode_margin_value(&mut b),
            power: match b.u8() % 4 {
                0 => -0.25,
                1 => 0.0,
                2 => decode_value(&mut b),
                _ => decode_margin_value(&mut b),
            },
        },
    };
    let n = b.u8() as usize;
    let labels = (0..n)
        .map(|_| decode_label(&mut b, num_classes.min(64)))
        .collect();
    AdaptiveCase {
        params,
        labels,
        num_classes,
    }
}

/// Invariants of [`AdaptiveMargins::compute`]: a typed
/// error when a parameter is not finite, there are no labels, a label is
/// outside `0..num_classes` (D6), or `num_classes` is 0 or too large to
/// hold; for valid input an `AdaptiveMargins` error only if the result
/// overflows f64 (`count^power` or the affine map); otherwise `num_classes` finite
/// margins, each between `margin_min` and `margin_max` up to one rounding
/// of the affine map ($2u(|m_{min}| + |m_{max}|)$), all `margin_max` when
/// every class is equally frequent (D5). No panic.
pub fn check_adaptive(case: &AdaptiveCase) {
    let p = case.params;
    let nc = case.num_classes;
    let r = p.compute(&case.labels, nc);
    let bad_input = !(p.margin_min.is_finite() && p.margin_max.is_finite() && p.power.is_finite())
        || nc == 0
        || case.labels.is_empty()
        || case.labels.iter().any(|&l| l < 0 || l as u64 >= nc as u64)
        || nc > isize::MAX as usize / 8;
    match r {
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::AdaptiveMargins { .. } | Error::LabelOutOfRange { .. }
                ),
                "untyped error {e:?}"
            );
            // valid input may still fail when the result overflows f64
            // (count^power or the affine map): then it is that error
            assert!(
                bad_input || matches!(e, Error::AdaptiveMargins { .. }),
                "error {e:?} for valid input: {case:?}"
            );
        }
        Ok(m) => {
            assert!(!bad_input, "Ok for bad input: {case:?}");
            assert_eq!(m.len(), nc);
            let lo = p.margin_min.min(p.margin_max);
            let hi = p.margin_min.max(p.margin_max);
            let tol = 2.0 * f64::EPSILON * (p.margin_min.abs() + p.margin_max.abs());
            for &v in &m {
                assert!(v.is_finite(), "{case:?}");
                assert!(
                    v >= lo - tol && v <= hi + tol,
                    "margin {v} outside [{lo}, {hi}]: {case:?}"
                );
            }
            let mut counts = vec![0usize; nc];
            for &l in &case.labels {
                counts[l as usize] += 1;
            }
            let first = counts[0].max(1);
            if p.power == 0.0 || counts.iter().all(|&x| x.max(1) == first) {
                assert!(m.iter().all(|&v| v == p.margin_max), "D5: {case:?}");
            }
        }
    }
}
