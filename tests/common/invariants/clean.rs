//! The invariants of sub-centre cleaning (`ArcFaceHead::clean`,
//! `to_single_centre`) on the head and batch of a step case.

use arcface::{ArcFaceHead, CleanConfig, Error, Real};

/// For `threshold` (any number) on `head` with features `x` (`n` rows
/// expected) and `labels`:
///
/// * an error exactly when the input is bad, of the kind that names it
///   (K = 1, a threshold outside (0°, 180°), no samples, a wrong length, a
///   label outside `0..C`, a non-finite feature), and the head unchanged;
/// * otherwise every angle finite in [0°, 180°] and equal to the arccos of
///   the cosine to the dominant sub-centre; nearest and dominant indices
///   below K and arg-maxima (lowest on ties) of the cosines and counts;
///   the counts summing to N; the official mask exactly "angle below the
///   threshold"; the strict mask the official one and "nearest is
///   dominant" (so strict ⊆ official);
/// * `to_single_centre` of the dominant sub-centres: a K = 1 head whose
///   rows are those sub-centres.
pub fn check_clean<T: Real>(head: &ArcFaceHead<T>, x: &[T], labels: &[i64], threshold: f64) {
    let cfg = head.config();
    let (c, k, d) = (cfg.num_classes, cfg.num_subcenters, cfg.in_channels);
    let n = labels.len();
    let w_before: Vec<u64> = head.weight().iter().map(|v| v.to_f64().to_bits()).collect();
    let r = head.clean(x, labels, &CleanConfig::new(threshold));
    let w_after: Vec<u64> = head.weight().iter().map(|v| v.to_f64().to_bits()).collect();
    assert_eq!(w_before, w_after, "clean changed the head");
    let bad_threshold = !(threshold > 0.0 && threshold < 180.0);
    let bad_labels = labels.iter().any(|&l| l < 0 || l >= c as i64);
    let bad_len = x.len() != n * d;
    let bad_value = x.iter().any(|v| !v.is_finite_());
    let r = match r {
        Err(e) => {
            let named = match &e {
                Error::InvalidConfig {
                    field: "num_subcenters",
                    ..
                } => k == 1,
                Error::InvalidConfig {
                    field: "threshold", ..
                } => k > 1 && bad_threshold,
                Error::EmptyBatch => n == 0,
                Error::Shape {
                    what: "features", ..
                } => bad_len,
                Error::LabelOutOfRange { .. } => bad_labels,
                Error::NonFinite {
                    what: "features",
                    row,
                    ..
                } => bad_value && x[row * d..(row + 1) * d].iter().any(|v| !v.is_finite_()),
                _ => false,
            };
            assert!(named, "clean: unexpected error {e:?}");
            return;
        }
        Ok(r) => r,
    };
    assert!(
        k > 1 && !bad_threshold && n > 0 && !bad_len && !bad_labels && !bad_value,
        "clean accepted bad input (K = {k}, threshold {threshold}, n {n})"
    );
    assert_eq!(
        (r.angles.len(), r.nearest.len(), r.cosines.len()),
        (n, n, n * k)
    );
    assert_eq!((r.dominant.len(), r.counts.len()), (c, c * k));
    assert_eq!(r.counts.iter().sum::<usize>(), n);
    for (cls, row) in r.counts.chunks_exact(k).enumerate() {
        let dom = r.dominant[cls];
        assert!(dom < k);
        assert!(row
            .iter()
            .enumerate()
            .all(|(j, &v)| v < row[dom] || (v == row[dom] && j >= dom)));
    }
    for (i, &label) in labels.iter().enumerate() {
        let (y, s) = (label as usize, r.nearest[i]);
        let cos = &r.cosines[i * k..(i + 1) * k];
        assert!(s < k && cos.iter().all(|v| v.is_finite()));
        assert!(cos
            .iter()
            .enumerate()
            .all(|(j, &v)| v < cos[s] || (v == cos[s] && j >= s)));
        let a = r.angles[i];
        assert!(a.is_finite() && (0.0..=180.0).contains(&a), "angle {a}");
        assert_eq!(a, cos[r.dominant[y]].clamp(-1.0, 1.0).acos().to_degrees());
        assert_eq!(r.keep_official[i], a < threshold);
        assert_eq!(r.keep_strict[i], r.keep_official[i] && s == r.dominant[y]);
    }
    let single = head
        .to_single_centre(&r.dominant)
        .expect("dominant sub-centres");
    assert_eq!(single.config().num_subcenters, 1);
    for (cls, row) in single.weight().chunks_exact(d).enumerate() {
        let src = (cls * k + r.dominant[cls]) * d;
        assert_eq!(row, &head.weight()[src..src + d]);
    }
}
