//! The class lifecycle: enrolment by weight imprinting against an f64
//! reference written here, the spherical k-means against its defining
//! properties, geometric growth, training right after enrolment, frozen
//! rows, retirement and removal against a head without those classes,
//! checkpoints, and bad input that changes nothing.

mod common;

#[path = "lifecycle/errors.rs"]
mod errors;
#[path = "lifecycle/retire.rs"]
mod retire;
#[path = "lifecycle/train.rs"]
mod train;

use arcface::{spherical_kmeans, ArcFaceHead, Enrolment, HeadConfig, Margins, Real};
use common::data::uniform;

/// A head of C classes, K sub-centres, D channels, scale 16, margin 0.3.
pub fn head<T: Real>(c: usize, k: usize, d: usize, seed: u64) -> ArcFaceHead<T> {
    let cfg = HeadConfig::new(c, d)
        .with_subcenters(k)
        .with_scale(16.0)
        .with_margins(Margins::Uniform(0.3));
    ArcFaceHead::new(cfg, seed).unwrap()
}

/// `n`×`d` values as `T`.
pub fn data<T: Real>(n: usize, d: usize, seed: u64) -> Vec<T> {
    uniform(n * d, seed)
        .iter()
        .map(|&v| T::from_f64(v as f64))
        .collect()
}

/// The reference imprint, written from the definition: each row divided
/// by its Euclidean norm, the mean of those, divided by its norm, times the
/// mean Euclidean norm of the old weight rows.
fn reference_imprint(x: &[f64], d: usize, old_w: &[f64]) -> Vec<f64> {
    let norm = |r: &[f64]| r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut mean = vec![0.0; d];
    let n = x.len() / d;
    for r in x.chunks(d) {
        let nr = norm(r);
        for j in 0..d {
            mean[j] += r[j] / nr / n as f64;
        }
    }
    let nm = norm(&mean);
    let rows = old_w.len() / d;
    let scale = old_w.chunks(d).map(norm).sum::<f64>() / rows as f64;
    mean.iter().map(|v| v / nm * scale).collect()
}

fn to_f64<T: Real>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() / scale))
}

fn imprint_matches_reference<T: Real>(tol: f64) {
    for (n, d, seed) in [(1, 17, 1), (5, 17, 2), (20, 64, 3), (3, 1, 4)] {
        let mut h = head::<T>(6, 1, d, seed);
        let old = to_f64(h.weight());
        let x: Vec<T> = data(n, d, seed + 10);
        let new = h.enrol(&x, &Enrolment::default()).unwrap();
        assert_eq!(new, 6);
        let want = reference_imprint(&to_f64(&x), d, &old);
        let got = to_f64(&h.weight()[6 * d..]);
        let err = max_rel_err(&got, &want);
        assert!(err < tol, "{} n={n} d={d}: error {err}", T::NAME);
        // the old rows do not move
        assert_eq!(to_f64(&h.weight()[..6 * d]), old);
    }
}

#[test]
fn k1_imprint_is_the_normalised_mean_of_normalised_exemplars() {
    imprint_matches_reference::<f64>(1e-14);
    imprint_matches_reference::<f32>(1e-6);
}

#[test]
fn k_above_n_uses_the_exemplars_then_their_mean() {
    let d = 9;
    let mut h = head::<f64>(3, 4, d, 5);
    let old = to_f64(h.weight());
    let x: Vec<f64> = data(2, d, 6);
    h.enrol(&x, &Enrolment::default()).unwrap();
    let rows = &h.weight()[3 * 4 * d..];
    let norm = |r: &[f64]| r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let scale = old.chunks(d).map(norm).sum::<f64>() / 12.0;
    for (j, r) in rows.chunks(d).enumerate() {
        let want = if j < 2 {
            let e = &x[j * d..(j + 1) * d];
            e.iter().map(|v| v / norm(e) * scale).collect::<Vec<_>>()
        } else {
            reference_imprint(&x, d, &old)
        };
        assert!(max_rel_err(r, &want) < 1e-14, "sub-centre {j}");
    }
}

/// Three tight groups around orthogonal axes, `per` rows each.
fn three_groups(per: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let noise: Vec<f32> = uniform(3 * per * d, seed);
    let mut u = Vec::new();
    let mut truth = Vec::new();
    for g in 0..3 {
        for i in 0..per {
            let mut r: Vec<f64> = (0..d)
                .map(|j| 0.1 * noise[(g * per + i) * d + j] as f64)
                .collect();
            r[g] += 1.0;
            let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            u.extend(r.iter().map(|v| v / n));
            truth.push(g);
        }
    }
    (u, truth)
}

#[test]
fn kmeans_is_deterministic_per_seed_and_finds_separated_groups() {
    let d = 8;
    let (u, truth) = three_groups(7, d, 11);
    for seed in 0..12 {
        let a = spherical_kmeans(&u, d, 3, seed, 50).unwrap();
        let b = spherical_kmeans(&u, d, 3, seed, 50).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.centres), bits(&b.centres));
        assert_eq!(a.assignment, b.assignment);
        // the partition is the true one, up to the numbering of the groups
        for i in 0..u.len() / d {
            for j in 0..u.len() / d {
                assert_eq!(truth[i] == truth[j], a.assignment[i] == a.assignment[j]);
            }
        }
        assert_eq!(a.sizes(), vec![7, 7, 7]);
    }
}

#[test]
fn kmeans_result_satisfies_its_definition() {
    // unstructured data: check the defining properties, recomputed here
    let d = 5;
    let raw: Vec<f32> = uniform(40 * d, 21);
    let u: Vec<f64> = raw
        .chunks(d)
        .flat_map(|r| {
            let n = r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            r.iter().map(move |&v| v as f64 / n).collect::<Vec<_>>()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for (k, seed) in [(2, 0), (4, 1), (7, 2), (40, 3), (1, 4)] {
        let km = spherical_kmeans(&u, d, k, seed, 100).unwrap();
        assert_eq!(km.centres.len(), k * d);
        // the objective never rises (up to rounding) and its last value is
        // Σ (1 − u·c) of the returned assignment
        for w in km.objective.windows(2) {
            assert!(w[1] <= w[0] + 1e-12, "objective rose: {:?}", km.objective);
        }
        let mut j = 0.0;
        for (i, r) in u.chunks(d).enumerate() {
            let c = km.assignment[i];
            let mine = dot(r, &km.centres[c * d..(c + 1) * d]);
            j += 1.0 - mine;
            // every row is with its most similar centre
            for o in km.centres.chunks(d) {
                assert!(dot(r, o) <= mine + 1e-12);
            }
        }
        let last = *km.objective.last().unwrap();
        assert!((last - j).abs() < 1e-9, "objective {last} vs {j}");
        // converged (well below the cap): each centre is its cluster's normalised mean
        assert!(km.objective.len() < 100);
        let sizes = km.sizes();
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first");
        for (c, centre) in km.centres.chunks(d).enumerate() {
            assert!((dot(centre, centre) - 1.0).abs() < 1e-12);
            if sizes[c] == 0 {
                continue;
            }
            let mut s = vec![0.0; d];
            for (i, r) in u
                .chunks(d)
                .enumerate()
                .filter(|(i, _)| km.assignment[*i] == c)
            {
                let _ = i;
                s.iter_mut().zip(r).for_each(|(a, b)| *a += b);
            }
            let n = dot(&s, &s).sqrt();
            for (a, b) in centre.iter().zip(&s) {
                assert!((a - b / n).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn sub_centres_of_an_enrolled_class_are_the_kmeans_centres() {
    let (d, k) = (8, 3);
    let (u, _) = three_groups(4, d, 31);
    let x: Vec<f64> = u.iter().map(|v| v * 2.5).collect();
    let mut h = head::<f64>(5, k, d, 9);
    let norm = |r: &[f64]| r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let scale = h.weight().chunks(d).map(norm).sum::<f64>() / 15.0;
    // two classes in one call: class j uses seed + j
    let labels: Vec<i64> = (0..24).map(|i| (i / 12) as i64).collect();
    let xx: Vec<f64> = x.iter().chain(&x).copied().collect();
    let how = Enrolment {
        seed: 40,
        ..Enrolment::default()
    };
    assert_eq!(h.enrol_many(&xx, &labels, &how).unwrap(), vec![5, 6]);
    for (j, seed) in [(5, 40), (6, 41)] {
        let km = spherical_kmeans(&u, d, k, seed, how.kmeans_iters).unwrap();
        let got = &h.weight()[j * k * d..(j + 1) * k * d];
        let want: Vec<f64> = km.centres.iter().map(|c| c * scale).collect();
        assert!(max_rel_err(got, &want) < 1e-13);
    }
}

#[test]
fn growth_is_geometric_and_never_moves_old_rows() {
    let d = 16;
    let mut h = head::<f32>(4, 2, d, 1);
    let mut caps = vec![h.class_capacity()];
    let mut reallocations = 0;
    for i in 0..300 {
        let old = h.weight().to_vec();
        let x: Vec<f32> = data(2, d, 100 + i);
        let c = h.enrol(&x, &Enrolment::default()).unwrap();
        assert_eq!(c, 4 + i as usize);
        assert_eq!(&h.weight()[..old.len()], &old[..]);
        let cap = h.class_capacity();
        assert!(cap >= h.config().num_classes);
        if cap != *caps.last().unwrap() {
            reallocations += 1;
            // each reallocation at least doubles the room
            assert!(cap >= 2 * caps.last().unwrap(), "{caps:?} → {cap}");
            caps.push(cap);
        }
    }
    // 4 → 304 classes: log2(76) < 7 doublings
    assert!(
        reallocations <= 7,
        "{reallocations} reallocations: {caps:?}"
    );
    // reserve_classes makes the next enrolments free of reallocation
    h.reserve_classes(1000).unwrap();
    let cap = h.class_capacity();
    for i in 0..1000 {
        h.enrol(&data::<f32>(1, d, 5000 + i), &Enrolment::default())
            .unwrap();
    }
    assert_eq!(h.class_capacity(), cap);
}

#[test]
fn enrolment_margins_and_adaptive_recompute() {
    use arcface::AdaptiveMargins;
    let d = 4;
    let mut h = head::<f64>(3, 1, d, 2);
    h.enrol(&data::<f64>(2, d, 3), &Enrolment::default())
        .unwrap();
    assert_eq!(h.margins(), &[0.3; 4]);
    let how = Enrolment {
        margin: Some(0.45),
        ..Enrolment::default()
    };
    h.enrol(&data::<f64>(2, d, 4), &how).unwrap();
    assert_eq!(h.margins(), &[0.3, 0.3, 0.3, 0.3, 0.45]);
    // margins now differ: a new class needs an explicit one
    let before = h.weight().to_vec();
    assert!(h
        .enrol(&data::<f64>(2, d, 5), &Enrolment::default())
        .is_err());
    assert_eq!(h.weight(), &before[..]);
    // adaptive margins over counts that include the new classes
    let labels: Vec<i64> = [0, 0, 0, 1, 1, 2, 3, 4, 4, 4, 4].to_vec();
    let p = AdaptiveMargins::default();
    h.set_adaptive_margins(&labels, p).unwrap();
    assert_eq!(h.margins(), &p.compute(&labels, 5).unwrap()[..]);
}
