//! Sub-centre cleaning against a separately written f64 reference, its
//! independence of the thread count, `to_single_centre` against direct row
//! selection, its errors, and the paper's recipe on synthetic noisy data.

mod common;

use arcface::{ArcFaceHead, CleanConfig, CleanRule, Error, HeadConfig, Margins, Real, Threads};
use common::data::{clusters, uniform};
use common::noisy::{noisy_web, run_recipes, NoisySpec, Recipe};

/// What the reference finds: per sample the own-class cosines, nearest
/// sub-centre and angle; per class the dominant sub-centre.
struct Reference {
    cos: Vec<Vec<f64>>,
    nearest: Vec<usize>,
    dominant: Vec<usize>,
    angle: Vec<f64>,
}

/// The definitions, in f64, straight from the paper's description:
/// cos = x·w / (max(‖x‖, 1e-12) max(‖w‖, 1e-12)); nearest and dominant by
/// first maximum; angle in degrees.
fn reference(w: &[f64], c: usize, k: usize, d: usize, x: &[f64], y: &[i64]) -> Reference {
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
    let mut cos = Vec::new();
    let mut nearest = Vec::new();
    for (i, &label) in y.iter().enumerate() {
        let xi = &x[i * d..(i + 1) * d];
        let row: Vec<f64> = (0..k)
            .map(|s| {
                let wr = &w[(label as usize * k + s) * d..(label as usize * k + s + 1) * d];
                let dot: f64 = xi.iter().zip(wr).map(|(a, b)| a * b).sum();
                dot / (norm(xi) * norm(wr))
            })
            .collect();
        let mut best = 0;
        for s in 1..k {
            if row[s] > row[best] {
                best = s;
            }
        }
        nearest.push(best);
        cos.push(row);
    }
    let mut dominant = vec![0; c];
    for (cls, dom) in dominant.iter_mut().enumerate() {
        let mut counts = vec![0; k];
        for (i, &label) in y.iter().enumerate() {
            if label as usize == cls {
                counts[nearest[i]] += 1;
            }
        }
        for s in 1..k {
            if counts[s] > counts[*dom] {
                *dom = s;
            }
        }
    }
    let angle = y
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            cos[i][dominant[l as usize]].clamp(-1.0, 1.0).acos() * 180.0 / std::f64::consts::PI
        })
        .collect();
    Reference {
        cos,
        nearest,
        dominant,
        angle,
    }
}

/// A K-sub-centre head of random weights, features drawn around a few of
/// its rows (so that classes have a clear dominant sub-centre and a spread
/// of angles), and labels.
fn case<T: Real>(
    c: usize,
    k: usize,
    d: usize,
    n: usize,
    seed: u64,
) -> (ArcFaceHead<T>, Vec<T>, Vec<i64>) {
    let w: Vec<T> = uniform(c * k * d, seed)
        .iter()
        .map(|&v| T::from_f64(v as f64))
        .collect();
    let head = ArcFaceHead::from_weight(HeadConfig::new(c, d).with_subcenters(k), &w).unwrap();
    let (x, _) = clusters(3 * c, d, n, 0.8, seed + 1);
    let x: Vec<T> = x.iter().map(|&v| T::from_f64(v as f64)).collect();
    let y: Vec<i64> = (0..n).map(|i| ((i * 7 + i / 3) % c) as i64).collect();
    (head, x, y)
}

fn check_against_reference<T: Real>(seed: u64, cos_tol: f64) {
    let (c, k, d, n) = (7, 3, 19, 300);
    let (head, x, y) = case::<T>(c, k, d, n, seed);
    let w: Vec<f64> = head.weight().iter().map(|v| v.to_f64()).collect();
    let x64: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let want = reference(&w, c, k, d, &x64, &y);
    for threshold in [75.0, 60.0, 95.0] {
        let got = head.clean(&x, &y, &CleanConfig::new(threshold)).unwrap();
        assert_eq!(got.dominant, want.dominant);
        for (i, &label) in y.iter().enumerate() {
            let row = &got.cosines[i * k..(i + 1) * k];
            for (got_cos, want_cos) in row.iter().zip(&want.cos[i]) {
                assert!((got_cos - want_cos).abs() <= cos_tol, "sample {i}");
            }
            let mut sorted = want.cos[i].clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            if sorted[0] - sorted[1] > 4.0 * cos_tol {
                assert_eq!(got.nearest[i], want.nearest[i], "sample {i}");
            }
            let a = want.angle[i];
            assert!(
                (got.angles[i] - a).abs() < 1e-3
                    || cos_tol > 1e-9 && (got.angles[i] - a).abs() < 0.05
            );
            if (a - threshold).abs() > 0.05 {
                assert_eq!(got.keep_official[i], a < threshold, "sample {i}");
                assert_eq!(
                    got.keep_strict[i],
                    a < threshold && want.nearest[i] == want.dominant[label as usize],
                    "sample {i}"
                );
            }
        }
        // the per-class report counts the same samples
        for cls in got.classes() {
            let idx: Vec<usize> = (0..n).filter(|&i| y[i] as usize == cls.class).collect();
            assert_eq!(cls.samples, idx.len());
            assert_eq!(
                cls.kept_official,
                idx.iter().filter(|&&i| got.keep_official[i]).count()
            );
            let mean = idx.iter().map(|&i| got.angles[i]).sum::<f64>() / idx.len() as f64;
            assert!((cls.angles.unwrap().mean - mean).abs() < 1e-9);
        }
    }
}

#[test]
fn cleaning_matches_an_f64_reference() {
    for seed in [1, 2, 3] {
        check_against_reference::<f64>(seed, 1e-12);
        check_against_reference::<f32>(seed, 1e-5);
    }
}

#[test]
fn the_official_rule_keeps_what_the_paper_keeps_and_strict_is_a_subset() {
    let (head, x, y) = case::<f32>(5, 3, 16, 200, 9);
    let r = head.clean(&x, &y, &CleanConfig::default()).unwrap();
    let (off, strict) = (r.keep(CleanRule::Official), r.keep(CleanRule::Strict));
    assert!(off.iter().zip(strict).all(|(&o, &s)| o || !s));
    // the data has both kinds of drop, so the test can fail
    assert!(r.kept(CleanRule::Strict) < r.kept(CleanRule::Official));
    assert!(r.kept(CleanRule::Official) < y.len());
}

#[test]
fn the_result_does_not_depend_on_the_thread_count() {
    // N·K·D past the point where the pass splits over threads
    let (head, x, y) = case::<f32>(50, 3, 64, 2000, 4);
    let one = head
        .clone()
        .with_threads(Threads::Sequential)
        .clean(&x, &y, &CleanConfig::default())
        .unwrap();
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let many = pool.install(|| head.clean(&x, &y, &CleanConfig::default()).unwrap());
        assert_eq!(one, many, "{threads} threads");
    }
}

#[test]
fn to_single_centre_selects_the_dominant_rows_and_keeps_the_rest() {
    let (c, k, d) = (6, 3, 8);
    let w: Vec<f64> = uniform(c * k * d, 11).iter().map(|&v| v as f64).collect();
    let cfg = HeadConfig::new(c, d)
        .with_subcenters(k)
        .with_scale(20.0)
        .with_margins(Margins::PerClass(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
        .with_easy_margin(true);
    let head = ArcFaceHead::<f64>::from_weight(cfg.clone(), &w).unwrap();
    let dominant = [2, 0, 1, 1, 2, 0];
    let single = head.to_single_centre(&dominant).unwrap();
    let mut rows = Vec::new();
    for (cls, &s) in dominant.iter().enumerate() {
        rows.extend_from_slice(&w[(cls * k + s) * d..(cls * k + s + 1) * d]);
    }
    let direct = ArcFaceHead::<f64>::from_weight(
        HeadConfig {
            num_subcenters: 1,
            ..cfg
        },
        &rows,
    )
    .unwrap();
    assert_eq!(single.weight(), direct.weight());
    assert_eq!(single.config(), direct.config());
    let x: Vec<f64> = uniform(4 * d, 12).iter().map(|&v| v as f64).collect();
    assert_eq!(
        single.logits_train(&x, &[0, 3, 5, 1]).unwrap(),
        direct.logits_train(&x, &[0, 3, 5, 1]).unwrap()
    );
    // errors: wrong length, index not below K
    assert!(matches!(
        head.to_single_centre(&dominant[..5]),
        Err(Error::Shape {
            what: "dominant",
            ..
        })
    ));
    assert!(matches!(
        head.to_single_centre(&[0, 0, 3, 0, 0, 0]),
        Err(Error::InvalidConfig {
            field: "dominant",
            ..
        })
    ));
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let (head, x, y) = case::<f32>(4, 3, 5, 12, 3);
    let before = head.weight().to_vec();
    let ok = CleanConfig::default();
    let plain = ArcFaceHead::<f32>::new(HeadConfig::new(4, 5), 0).unwrap();
    assert!(matches!(
        plain.clean(&x, &y, &ok),
        Err(Error::InvalidConfig {
            field: "num_subcenters",
            ..
        })
    ));
    for t in [0.0, -1.0, 180.0, 200.0, f64::NAN, f64::INFINITY] {
        let e = head.clean(&x, &y, &CleanConfig::new(t)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidConfig {
                    field: "threshold",
                    ..
                }
            ),
            "{t}: {e:?}"
        );
        assert!(e.to_string().contains("threshold"));
    }
    let mut bad = y.clone();
    bad[5] = 4;
    assert!(matches!(
        head.clean(&x, &bad, &ok),
        Err(Error::LabelOutOfRange {
            sample: 5,
            label: 4,
            num_classes: 4
        })
    ));
    bad[5] = -1;
    assert!(matches!(
        head.clean(&x, &bad, &ok),
        Err(Error::LabelOutOfRange { sample: 5, .. })
    ));
    assert!(matches!(
        head.clean(&x[..x.len() - 1], &y, &ok),
        Err(Error::Shape {
            what: "features",
            ..
        })
    ));
    assert!(matches!(
        head.clean(&x, &y[..11], &ok),
        Err(Error::Shape {
            what: "features",
            ..
        })
    ));
    assert!(matches!(head.clean(&[], &[], &ok), Err(Error::EmptyBatch)));
    let mut nan = x.clone();
    nan[7 * 5 + 2] = f32::NAN;
    assert!(matches!(
        head.clean(&nan, &y, &ok),
        Err(Error::NonFinite {
            what: "features",
            row: 7,
            col: 2
        })
    ));
    assert_eq!(head.weight(), &before[..]);
}

#[test]
fn the_invariants_hold_on_random_cases() {
    for seed in 0..20u64 {
        let k = 1 + (seed % 4) as usize;
        let (c, d, n) = (
            1 + (seed % 5) as usize,
            1 + (seed % 7) as usize,
            (seed % 9) as usize,
        );
        let w: Vec<f32> = uniform(c * k * d, seed).to_vec();
        let head =
            ArcFaceHead::<f32>::from_weight(HeadConfig::new(c, d).with_subcenters(k), &w).unwrap();
        let x = uniform(n * d, seed + 100);
        let y: Vec<i64> = (0..n as i64)
            .map(|i| (i * 5 + seed as i64) % (c as i64 + 1) - (seed % 3 == 0) as i64)
            .collect();
        for t in [75.0, 0.0, 179.9, f64::NAN] {
            common::invariants::clean::check_clean(&head, &x, &y, t);
        }
    }
}

/// The paper's recipe, reduced: on 40 % label noise (half closed-set,
/// half open-set), K = 3 → clean → K = 1 beats both K = 1 and K = 3 on
/// clean test data, and the dropped set is mostly the injected noise.
#[test]
fn cleaning_then_k1_beats_k1_and_k3_on_noisy_labels() {
    let set = noisy_web(&NoisySpec {
        classes: 40,
        dim: 48,
        per_class: 60,
        test_per_class: 40,
        closed: 0.2,
        open: 0.2,
        spread: 1.1,
        seed: 7,
    });
    let o = run_recipes(
        &set,
        &Recipe {
            epochs: 15,
            subcenters: 3,
            scale: 32.0,
            margin: 0.5,
            threshold: CleanConfig::DEFAULT_THRESHOLD_DEGREES,
            seed: 7,
        },
    );
    eprintln!("{o:?}");
    assert!(o.cleaned > o.k1 && o.cleaned > o.kn, "{o:?}");
    assert!(o.precision > 0.9 && o.recall > 0.8, "{o:?}");
}
