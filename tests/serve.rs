//! Serving from half-precision weights (`HalfHead`): the logits and
//! predictions of an f32 head holding the same (widened) values, through
//! a separate path (f32 weights, faer or the small-batch kernels); top-1
//! agreement with the original f32 head; bad weights refused.

mod common;

use arcface::half::{bf16, f16};
use arcface::{
    ArcFaceHead, Checkpoint, Error, HalfFloat, HalfHead, HeadConfig, ServeWorkspace, Threads,
    WeightDtype,
};
use common::data::{clusters, uniform};

/// The f32 head holding exactly the values `served` holds: `head`'s
/// weights rounded to `H` through `half`'s own conversions.
fn widened<H: HalfFloat>(head: &ArcFaceHead<f32>) -> ArcFaceHead<f32> {
    let w: Vec<f32> = head
        .weight()
        .iter()
        .map(|&v| H::widen(H::bits_of(v)))
        .collect();
    let mut h = ArcFaceHead::from_weight(head.config().clone(), &w).unwrap();
    if !head.retired().is_empty() {
        h.retire(&head.retired()).unwrap();
    }
    h
}

fn logits_match<H: HalfFloat>((c, d): (usize, usize), k: usize, n: usize, threads: usize) {
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 5).unwrap();
    head.retire(&[3, 20]).unwrap();
    let reference = widened::<H>(&head);
    let served = HalfHead::<H>::from_head(&head)
        .unwrap()
        .with_threads(Threads::Rayon);
    let x = uniform(n * d, 11 + n as u64);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let (got, want) = pool.install(|| (served.logits(&x).unwrap(), reference.logits(&x).unwrap()));
    for (e, (a, b)) in got.iter().zip(&want).enumerate() {
        if b.is_infinite() {
            assert_eq!(a, b, "{} entry {e}", H::NAME);
        } else {
            // cosines agree to a few f32 roundings, times S = 64
            assert!(
                (a - b).abs() <= 64.0 * 2e-6,
                "{} k={k} n={n} entry {e}: {a} vs {b}",
                H::NAME
            );
        }
    }
    let (p, q) = pool.install(|| (served.predict(&x).unwrap(), reference.predict(&x).unwrap()));
    assert_eq!(p.retired, q.retired);
    for (i, (a, b)) in p.labels.iter().zip(&q.labels).enumerate() {
        // a label may differ only between two near-equal logits
        let row = &want[i * c..(i + 1) * c];
        assert!(a == b || (row[*a] - row[*b]).abs() < 1e-3, "sample {i}");
    }
    assert!(p
        .scores
        .iter()
        .zip(&q.scores)
        .all(|(a, b)| (a - b).abs() < 1e-4));
}

#[test]
fn logits_and_predictions_match_the_f32_head_of_the_same_values() {
    for n in [1, 2, 5, 8, 16, 17, 40] {
        for k in [1, 3] {
            for threads in [1, 2] {
                logits_match::<f16>((37, 70), k, n, threads);
                logits_match::<bf16>((37, 70), k, n, threads);
            }
        }
    }
}

/// Heads of over 4 MiB run in one block of rows per thread (on a host with
/// two cores): blocks of whole 16-row panels, whose edges cut through
/// classes' sub-centres, gathered back into the logits.
#[test]
fn logits_match_the_f32_head_when_blocks_split_the_rows() {
    for n in [1, 8, 17] {
        for k in [1, 3] {
            logits_match::<f16>((3050, 701), k, n, 2);
            logits_match::<bf16>((3050, 701), k, n, 2);
        }
    }
}

/// Top-1 of the half heads against the f32 head on noisy clusters whose
/// centres are the head's rows (an imprinted head).
#[test]
fn top1_agrees_with_the_f32_head() {
    let (c, d, n) = (500, 128, 4000);
    let (centres, _) = clusters(c, d, c, 0.0, 21);
    let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(c, d), &centres).unwrap();
    let (x, _) = clusters(c, d, n, 0.9, 21);
    let want = head.predict(&x).unwrap().labels;
    let f = HalfHead::<f16>::from_head(&head)
        .unwrap()
        .predict(&x)
        .unwrap()
        .labels;
    let b = HalfHead::<bf16>::from_head(&head)
        .unwrap()
        .predict(&x)
        .unwrap()
        .labels;
    let agree = |l: &[usize]| l.iter().zip(&want).filter(|(a, b)| a == b).count() as f64 / n as f64;
    assert!(agree(&f) >= 0.999, "f16 top-1 agreement {}", agree(&f));
    assert!(agree(&b) >= 0.999, "bf16 top-1 agreement {}", agree(&b));
}

#[test]
fn a_bf16_checkpoint_serves_without_widening_and_keeps_its_retired_classes() {
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(9, 12).with_subcenters(2), 2).unwrap();
    head.retire(&[4]).unwrap();
    let ck = Checkpoint::from_bytes(
        &Checkpoint::from_head(&head, WeightDtype::BF16)
            .unwrap()
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    let served = HalfHead::<bf16>::from_checkpoint(&ck, None).unwrap();
    assert_eq!(served.retired(), vec![4]);
    // 18 rows, padded to a panel of 16 rows
    assert_eq!(served.weight_bytes(), 32 * 12 * 2);
    let x = uniform(3 * 12, 4);
    let want = ck.to_head::<f32>(None).unwrap().logits(&x).unwrap();
    let got = served.logits(&x).unwrap();
    assert!(got
        .iter()
        .zip(&want)
        .all(|(a, b)| a == b || (a - b).abs() <= 64.0 * 2e-6));
    // the wrong half type is an error naming both dtypes
    let err = HalfHead::<f16>::from_checkpoint(&ck, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("BF16") && err.contains("F16"), "{err}");
}

#[test]
fn f16_subnormal_and_extreme_weights_serve_exactly() {
    // a row of subnormals only, one of the largest f16 values, one of zeros
    let bits: [u16; 12] = [
        1, 0x03FF, 0x8001, 0x0200, 0x7BFF, 0xFBFF, 0x3C00, 0, 0, 0, 0, 0,
    ];
    let w: Vec<f16> = bits.iter().map(|&b| f16::from_bits(b)).collect();
    let cfg = HeadConfig::new(3, 4).with_scale(1.0);
    let served = HalfHead::from_weight(cfg.clone(), &w).unwrap();
    let wide: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
    let reference = ArcFaceHead::from_weight(cfg, &wide).unwrap();
    let x = [0.25f32, -1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 1.0];
    let (a, b) = (served.logits(&x).unwrap(), reference.logits(&x).unwrap());
    assert!(
        a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-6),
        "{a:?} vs {b:?}"
    );
}

#[test]
fn non_finite_half_weights_are_refused_naming_row_and_column() {
    for bad in [f16::NAN, f16::INFINITY, f16::NEG_INFINITY] {
        let mut w = vec![f16::ONE; 4 * 6];
        w[2 * 6 + 5] = bad;
        match HalfHead::from_weight(HeadConfig::new(4, 6), &w) {
            Err(Error::NonFinite { what, row, col }) => {
                assert_eq!((what, row, col), ("f16 weight", 2, 5));
            }
            other => panic!("{other:?}"),
        }
    }
    let mut w = vec![bf16::ONE; 2 * 3];
    w[4] = bf16::NAN;
    assert!(matches!(
        HalfHead::from_weight(HeadConfig::new(2, 3), &w),
        Err(Error::NonFinite {
            what: "bf16 weight",
            row: 1,
            col: 1
        })
    ));
    // the wrong length and a weight too large for f16
    assert!(matches!(
        HalfHead::<bf16>::from_weight(HeadConfig::new(2, 3), &w[..5]),
        Err(Error::Shape { .. })
    ));
    let big =
        ArcFaceHead::<f32>::from_weight(HeadConfig::new(2, 2), &[1.0, 0.0, 0.0, 7e4]).unwrap();
    assert!(matches!(
        HalfHead::<f16>::from_head(&big),
        Err(Error::NonFinite { row: 1, col: 1, .. })
    ));
}

#[test]
fn bad_features_and_buffers_are_errors_that_leave_out_unchanged() {
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(5, 4), 0).unwrap();
    let served = HalfHead::<bf16>::from_head(&head).unwrap();
    let mut ws = ServeWorkspace::new(&served, 2).unwrap();
    let mut out = [9.0f32; 10];
    let mut x = [0.5f32; 8];
    x[6] = f32::NAN;
    assert!(matches!(
        served.logits_into(&x, &mut ws, &mut out),
        Err(Error::NonFinite {
            what: "features",
            row: 1,
            col: 2
        })
    ));
    assert!(matches!(
        served.logits_into(&[1.0; 8], &mut ws, &mut out[..9]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        served.logits_into(&[], &mut ws, &mut out),
        Err(Error::EmptyBatch)
    ));
    assert!(matches!(
        served.logits_into(&[1.0; 7], &mut ws, &mut out),
        Err(Error::Shape { .. })
    ));
    assert_eq!(out, [9.0; 10]);
    // a larger batch than the workspace was built for grows it
    let mut big = vec![0.0f32; 40 * 5];
    served
        .logits_into(&uniform(40 * 4, 1), &mut ws, &mut big)
        .unwrap();
    assert!(big.iter().all(|v| v.is_finite()));
}
