//! Robustness under hostile input, on stable Rust (issue 5).
//!
//! The invariants live in `tests/invariants/mod.rs`, shared with the
//! cargo-fuzz targets in `fuzz/` (nightly). This file runs them three ways:
//!
//! 1. **Corpus replay**: every file of `fuzz/corpus/<target>/` (the seeds
//!    below plus every input a fuzzer found worth keeping, crashes included)
//!    goes through the same decoder and checker as in the fuzzer.
//! 2. **Proptest**: random bytes through the same decoders, and structured
//!    strategies that reach deep states random bytes rarely do (valid
//!    batches, well-formed margins files, cosines at ±1 ± ulps).
//! 3. **Named regressions**: one test per defect the fuzzers found, on the
//!    input kept in the corpus.
//!
//! The tolerances are derived next to each checker (`check_margin_t` for the
//! margin's f64 comparison; everything else is exact or a finiteness check).

mod invariants;

use arcface::{
    margin_target, parse_margins_file, AdaptiveMargins, ArcFaceHead, Batch, Error, HeadConfig,
    LossConfig, MarginConstants, MarginGrad, Margins, Reduction, Threads, Workspace,
};
use invariants::*;
use proptest::prelude::*;
use std::path::PathBuf;

// ------------------------------------------------------------------ corpus

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

/// Runs `check` on each file, reporting every failing file by name.
fn replay(target: &str, check: fn(&[u8])) {
    let mut failed = Vec::new();
    for (name, bytes) in corpus(target) {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "fuzz/corpus/{target}: {failed:?} fail");
}

fn run_margin(b: &[u8]) {
    check_margin(&decode_margin(b))
}
fn run_step(b: &[u8]) {
    check_step(&decode_step(b))
}
fn run_file(b: &[u8]) {
    check_file(&decode_file(b))
}
fn run_adaptive(b: &[u8]) {
    check_adaptive(&decode_adaptive(b))
}

#[test]
fn corpus_margin_replays_clean() {
    replay("margin", run_margin);
}

#[test]
fn corpus_step_replays_clean() {
    replay("step", run_step);
}

#[test]
fn corpus_margins_file_replays_clean() {
    replay("margins_file", run_file);
}

#[test]
fn corpus_adaptive_margins_replays_clean() {
    replay("adaptive_margins", run_adaptive);
}

// ------------------------------------------------------------------ seeds

/// Margin seed: flags (1 = f64, 2 = easy, 4 = straight-through), margin tag
/// and payload, cosine tag and payload (see `decode_margin`).
fn margin_seed(flags: u8, mtag: u8, mpay: u64, ctag: u8, cpay: u64) -> Vec<u8> {
    let mut v = vec![flags, mtag];
    v.extend(mpay.to_le_bytes());
    v.push(ctag);
    v.extend(cpay.to_le_bytes());
    v
}

/// Payload of "± a few ulps": bit 0 the sign, bits 1..9 the step as i8.
fn ulp_pay(negative: bool, k: i8) -> u64 {
    ((k as u8 as u64) << 1) | negative as u64
}

/// A small value k/16 as a step-decoder byte.
fn v16(k: i32) -> u8 {
    k.rem_euclid(224) as u8
}

const M05: [u8; 9] = [0, 0, 0, 0, 0, 0, 0, 0, 0]; // margin tag 0 = 0.5

fn step_seed(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn file_seed(nc: u8, via_load: bool, text: &[u8]) -> Vec<u8> {
    let mut v = vec![nc, via_load as u8];
    v.extend_from_slice(text);
    v
}

/// The committed seed corpus: (target, file name, bytes). Each name says
/// which edge case it starts the fuzzer at.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        // ---- margin: cosines
        (
            "margin",
            "seed-cos-exactly-one-f32",
            margin_seed(0, 0, 0, 1, 0),
        ),
        (
            "margin",
            "seed-cos-exactly-minus-one-f32",
            margin_seed(0, 0, 0, 1, 1),
        ),
        (
            "margin",
            "seed-cos-one-ulp-above-one-f32",
            margin_seed(0, 0, 0, 2, ulp_pay(false, 1)),
        ),
        (
            "margin",
            "seed-cos-two-ulps-below-minus-one-f32",
            margin_seed(0, 0, 0, 2, ulp_pay(true, -2)),
        ),
        (
            "margin",
            "seed-cos-one-ulp-below-one-f64",
            margin_seed(1, 0, 0, 2, ulp_pay(false, -1)),
        ),
        (
            "margin",
            "seed-cos-subnormal-easy-f32",
            margin_seed(2, 0, 0, 4, 0x2a),
        ),
        (
            "margin",
            "seed-cos-plus-zero-easy-f64",
            margin_seed(3, 0, 0, 3, 0),
        ),
        (
            "margin",
            "seed-cos-minus-zero-easy-f32",
            margin_seed(2, 0, 0, 3, 1),
        ),
        ("margin", "seed-cos-nan-f32", margin_seed(0, 0, 0, 5, 0)),
        (
            "margin",
            "seed-cos-minus-inf-f64",
            margin_seed(1, 0, 0, 6, 1),
        ),
        (
            "margin",
            "seed-cos-at-threshold-f32",
            margin_seed(0, 0, 0, 7, ulp_pay(false, 0)),
        ),
        (
            "margin",
            "seed-cos-one-ulp-above-threshold-f32",
            margin_seed(0, 0, 0, 7, ulp_pay(false, 1)),
        ),
        (
            "margin",
            "seed-cos-floor-band-f64",
            margin_seed(1, 0, 0, 8, 2 * 7),
        ),
        (
            "margin",
            "seed-cos-straight-through-near-one-f32",
            margin_seed(4, 0, 0, 8, 2),
        ),
        // ---- margin: margins
        (
            "margin",
            "seed-margin-zero-f32",
            margin_seed(0, 2, 0, 9, 0x1234_5678_9abc),
        ),
        (
            "margin",
            "seed-margin-minus-zero-at-minus-one",
            margin_seed(0, 2, 1, 1, 1),
        ),
        (
            "margin",
            "seed-margin-tiny-f64",
            margin_seed(1, 4, 2 * 7, 9, 0xdead_beef),
        ),
        (
            "margin",
            "seed-margin-pi-f32",
            margin_seed(0, 5, 0, 9, 0x4000_0000_0000),
        ),
        (
            "margin",
            "seed-margin-f32-pi-plus-ulp",
            margin_seed(0, 6, ulp_pay(false, 1), 1, 1),
        ),
        (
            "margin",
            "seed-margin-above-pi-f32",
            margin_seed(0, 7, 2 * 1500, 9, 0x7000_0000_0000),
        ),
        (
            "margin",
            "seed-margin-negative-f32",
            margin_seed(0, 8, 2 * 5000, 1, 0),
        ),
        (
            "margin",
            "seed-margin-negative-easy-exact",
            margin_seed(2, 8, 2 * 31_416, 9, 0x1_0000_0000_0000),
        ),
        (
            "margin",
            "seed-margin-1e39-f32",
            margin_seed(0, 10, 2 * 39, 9, 0x5000_0000_0000),
        ),
        (
            "margin",
            "seed-margin-1e300-f64",
            margin_seed(1, 10, 2 * 300, 9, 0x5000_0000_0000),
        ),
        (
            "margin",
            "seed-margin-f32-max-rounds-finite",
            margin_seed(0, 11, ulp_pay(false, 1), 9, 0x5000_0000_0000),
        ),
        (
            "margin",
            "seed-margin-f32-max-rounds-to-inf",
            margin_seed(0, 11, ulp_pay(false, 3), 9, 0x5000_0000_0000),
        ),
        (
            "margin",
            "seed-margin-nan",
            margin_seed(0, 1, f64::NAN.to_bits(), 9, 0),
        ),
        // ---- step
        (
            "step",
            "seed-valid-axis-weights-exact-parallel",
            step_seed(&[
                &[0, 0, 2, 3, 3, 1, 0],
                &M05,
                &[0, 0],
                &[7, 0, 0, 7, 1, 0, 7, 2, 0],    // W = I
                &[3, 0, 0, v16(16), v16(16), 0], // x0 = w0 (cos exactly 1), x1 = (1, 1, 0)
                &[0, 1],
                &[2, v16(16)],
                &M05,
                &M05,
                &M05,
                &[3, 0, 0, 1],
            ]),
        ),
        (
            "step",
            "seed-subcenters-duplicate-and-negated-rows-f64",
            step_seed(&[
                &[1, 4, 3, 4, 2, 3, 1],
                &M05,
                &[1, 0],
                &[0, v16(8), v16(-8), v16(24), 0xF6],
                &[6, 0, 6, 0, 0, v16(-16), 0, 0, v16(3)],
                &[1, 0, 0, 0, 0, 0, 0, 0, 0],
                &[3, 0, 4, 1, 5, 0, 0],
                &[0, 1, 0],
                &[3],
            ]),
        ),
        (
            "step",
            "seed-zero-and-sub-eps-rows",
            step_seed(&[
                &[0, 0, 3, 5, 2, 2, 0],
                &M05,
                &[0, 0],
                &[
                    1,
                    2,
                    0xF6,
                    0xF7,
                    0xF8,
                    0xF9,
                    0xFA,
                    0,
                    v16(1),
                    0,
                    0,
                    0,
                    0,
                    0,
                    1,
                ],
                &[1, 2, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 3, 2],
                &[0, 1, 1],
                &[4, v16(4)],
            ]),
        ),
        (
            "step",
            "seed-huge-and-tiny-magnitudes",
            step_seed(&[
                &[0, 0, 2, 3, 2, 1, 2],
                &M05,
                &[0, 0],
                &[
                    0, 0xE2, 15, 0xE3, 12, 0xE2, 0xF8, 0, 0xE2, 0xF0, 0xE6, 1, 0, 0xE7, 3,
                ],
                &[0, 0xE2, 14, 0xE8, 0xE9, 4, 1, 0xF0],
                &[0, 1],
            ]),
        ),
        (
            "step",
            "seed-label-out-of-range",
            step_seed(&[&[0, 0, 2, 2, 3, 1, 0], &M05, &[0, 0], &[], &[], &[0, 0xF1]]),
        ),
        (
            "step",
            "seed-label-negative-f64",
            step_seed(&[
                &[1, 0, 1, 2, 3, 1, 0],
                &M05,
                &[0, 0],
                &[0, 16, 0, 0, 0, 16, 0, 16, 16],
                &[0, 16, 16],
                &[0xF0],
            ]),
        ),
        (
            "step",
            "seed-soft-targets-and-sample-weights",
            step_seed(&[
                &[0xC0, 0, 2, 2, 3, 1, 0],
                &M05,
                &[1, 0],
                &[0, v16(16), 0, 0, 0, v16(16), 0, v16(-16), v16(-16)],
                &[0, v16(3), v16(5), 3, 2],
                &[2, 0],
                &[v16(8), v16(8), 0, v16(4), v16(4), v16(8)],
                &[v16(16), 0xE2, 10],
            ]),
        ),
        (
            "step",
            "seed-label-smooth-classy-none-reduction",
            step_seed(&[
                &[0, 0, 3, 4, 4, 1, 2],
                &M05,
                &[2, 3, 2, 128, 1, 0],
                &[0, 16, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 16, 0, 0, 0, 0, 16],
                &[3, 3, 3, 2, 0, 16, 16, 16, 16],
                &[3, 2, 1],
            ]),
        ),
        (
            "step",
            "seed-per-class-margins-near-pi-negative-huge",
            step_seed(&[
                &[8, 0, 2, 3, 4, 1, 0],
                &[5, 0, 0, 0, 0, 0, 0, 0, 0],
                &[8, 0x20, 0x4e, 0, 0, 0, 0, 0, 0],
                &[10, 78, 0, 0, 0, 0, 0, 0, 0],
                &[2, 0, 0, 0, 0, 0, 0, 0, 0],
                &[0, 0],
                &[7, 0, 0, 7, 1, 0, 7, 2, 1, 0, 16, 16, 16],
                &[3, 2, 4, 3, 4],
                &[2, 3],
            ]),
        ),
        (
            "step",
            "seed-easy-straight-through-f64",
            step_seed(&[
                &[7, 0, 2, 2, 2, 2, 1],
                &M05,
                &[0, 0],
                &[7, 0, 0, 7, 0, 1, 7, 1, 0, 7, 1, 1],
                &[4, 0, 0xFE, 5, 3],
                &[0, 1],
            ]),
        ),
        (
            "step",
            "seed-features-one-short",
            step_seed(&[&[0, 3, 2, 2, 2, 1, 0], &M05, &[0, 0], &[], &[], &[0, 1]]),
        ),
        (
            "step",
            "seed-foreign-workspace",
            step_seed(&[
                &[0, 0x80, 1, 2, 2, 1, 0],
                &M05,
                &[0, 0],
                &[0, 16, 0, 0, 0, 16],
                &[0, 16, 16],
                &[1],
            ]),
        ),
        (
            "step",
            "seed-use-soft-without-targets",
            step_seed(&[
                &[0, 0, 1, 2, 2, 1, 0],
                &M05,
                &[0, 2],
                &[0, 16, 0, 0, 0, 16],
                &[0, 16, 16],
                &[1],
            ]),
        ),
        (
            "step",
            "seed-zero-scale-loss-and-class-weights",
            step_seed(&[
                &[0x30, 0, 2, 3, 2, 1, 3],
                &M05,
                &[1, 1],
                &[0xE2, 12],
                &[v16(16), v16(-32)],
                &[0, 16, 0, 0, 0, 0, 16, 0],
                &[0, 16, 16, 16, 0, 0, 0, 16],
                &[0, 1],
            ]),
        ),
        (
            "step",
            "seed-empty-batch",
            step_seed(&[&[0, 0, 0, 4, 3, 1, 0], &M05]),
        ),
        (
            "step",
            "seed-num-classes-zero",
            step_seed(&[&[0, 0, 2, 4, 0, 1, 0], &M05]),
        ),
        // ---- margins file
        (
            "margins_file",
            "seed-ok-mixed-line-ends",
            file_seed(3, false, b"0.1\r\n 0.2\t\n3e-1"),
        ),
        (
            "margins_file",
            "seed-ok-cr-only-via-load",
            file_seed(3, true, b"0.5\r-0.25\r1E+2\r"),
        ),
        (
            "margins_file",
            "seed-ok-signs-and-dots",
            file_seed(4, false, b"+.5\n-1.\n0e0\n\t7\t\n"),
        ),
        (
            "margins_file",
            "seed-bom",
            file_seed(1, false, "\u{feff}0.5\n".as_bytes()),
        ),
        (
            "margins_file",
            "seed-comma-decimal",
            file_seed(1, false, b"0,5\n"),
        ),
        (
            "margins_file",
            "seed-inf-and-nan",
            file_seed(2, false, b"inf\nnan\n"),
        ),
        (
            "margins_file",
            "seed-underscore",
            file_seed(1, false, b"1_0.5"),
        ),
        (
            "margins_file",
            "seed-blank-line",
            file_seed(3, false, b"0.1\n\n0.3\n"),
        ),
        (
            "margins_file",
            "seed-two-numbers-on-a-line",
            file_seed(2, false, b"0.1 0.2\n0.3\n"),
        ),
        (
            "margins_file",
            "seed-exponent-overflow",
            file_seed(1, false, b"1e400\n"),
        ),
        (
            "margins_file",
            "seed-wrong-count",
            file_seed(3, false, b"0.1\n0.2\n"),
        ),
        (
            "margins_file",
            "seed-invalid-utf8-via-load",
            file_seed(3, true, b"0.5\n0.25\n\xff\xfe\n"),
        ),
        (
            "margins_file",
            "seed-num-classes-usize-max",
            file_seed(0xF0, false, b"0.5\n"),
        ),
        (
            "margins_file",
            "seed-empty-file-zero-classes",
            file_seed(0, false, b""),
        ),
        (
            "margins_file",
            "seed-lone-newline",
            file_seed(1, true, b"\n"),
        ),
        // ---- adaptive margins
        (
            "adaptive_margins",
            "seed-default-skewed",
            vec![4, 0, 7, 0, 0, 0, 0, 1, 2, 2],
        ),
        (
            "adaptive_margins",
            "seed-all-counts-equal-d5",
            vec![3, 0, 3, 0, 1, 2],
        ),
        (
            "adaptive_margins",
            "seed-single-class-d5",
            vec![1, 0, 2, 0, 0],
        ),
        (
            "adaptive_margins",
            "seed-missing-top-classes-d6",
            vec![5, 0, 3, 0, 0, 1],
        ),
        (
            "adaptive_margins",
            "seed-negative-label",
            vec![3, 0, 2, 0, 0xF0],
        ),
        (
            "adaptive_margins",
            "seed-label-equals-num-classes",
            vec![3, 0, 2, 0, 0xF1],
        ),
        ("adaptive_margins", "seed-no-labels", vec![3, 0, 0]),
        ("adaptive_margins", "seed-zero-classes", vec![0, 0, 1, 0]),
        (
            "adaptive_margins",
            "seed-power-zero",
            vec![
                4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0, 0, 0, 1, 2, 3,
            ],
        ),
        (
            "adaptive_margins",
            "seed-huge-span",
            vec![
                4, 1, 10, 0x6a, 2, 0, 0, 0, 0, 0, 0, 10, 0x6b, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 1,
                2,
            ],
        ),
        (
            "adaptive_margins",
            "seed-num-classes-beyond-vec",
            vec![0xF2, 0, 0, 2, 0, 1],
        ),
        (
            "adaptive_margins",
            "seed-num-classes-usize-max",
            vec![0xF0, 0, 1, 0],
        ),
    ]
}

/// Every seed above is in `fuzz/corpus/`, byte for byte. To (re)write them:
/// `ARCFACE_WRITE_SEEDS=1 cargo test --release --test robustness seed_corpus`.
#[test]
fn seed_corpus_is_committed() {
    let write = std::env::var_os("ARCFACE_WRITE_SEEDS").is_some();
    let mut missing = Vec::new();
    for (target, name, bytes) in seeds() {
        let path = corpus_dir(target).join(name);
        if write {
            std::fs::create_dir_all(corpus_dir(target)).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            missing.push(format!("{target}/{name}"));
        }
    }
    assert!(missing.is_empty(), "seeds missing or stale: {missing:?}");
}

// ------------------------------------------------------------------ proptest

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// f32 cosines where the margin is delicate: ±1, ±1 ± up to 8 ulps, ±0,
/// subnormals, the band below 1, and anything at all.
fn edge_cos_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(1.0f32),
        Just(-1.0f32),
        (-8i32..=8).prop_map(|k| f32::from_bits((1.0f32.to_bits() as i32 + k) as u32)),
        (-8i32..=8).prop_map(|k| f32::from_bits(((-1.0f32).to_bits() as i32 + k) as u32)),
        Just(0.0f32),
        Just(-0.0f32),
        (1u32..0x0080_0000).prop_map(f32::from_bits),
        (0u32..4096).prop_map(|k| 1.0 - k as f32 * 2f32.powi(-24)),
        -1.0f32..=1.0,
        any::<f32>(),
    ]
}

fn edge_cos_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1.0f64),
        Just(-1.0f64),
        (-8i64..=8).prop_map(|k| f64::from_bits((1.0f64.to_bits() as i64 + k) as u64)),
        (0u64..1 << 22).prop_map(|k| 1.0 - k as f64 * 2f64.powi(-53)),
        (1u64..1 << 52).prop_map(f64::from_bits),
        -1.0f64..=1.0,
        any::<f64>(),
    ]
}

/// Finite margins of every sign and size, and a few non-finite ones.
fn edge_margin() -> impl Strategy<Value = f64> {
    use std::f64::consts::PI;
    prop_oneof![
        4 => -4.0f64..7.0,
        1 => Just(0.0),
        1 => Just(PI),
        1 => (-64i64..=64).prop_map(|k| f64::from_bits((PI.to_bits() as i64 + k) as u64)),
        1 => 1e-300f64..1e-3,
        1 => (-308i32..=308).prop_map(|e| 10f64.powi(e)),
        1 => any::<f64>(),
    ]
}

fn grad_mode() -> impl Strategy<Value = MarginGrad> {
    prop_oneof![Just(MarginGrad::Exact), Just(MarginGrad::StraightThrough)]
}

proptest! {
    #![proptest_config(cfg(512))]

    /// Target 1, structured: f32 cosines at the edges, every margin.
    #[test]
    fn prop_margin_f32(c in edge_cos_f32(), m in edge_margin(), easy: bool, g in grad_mode()) {
        check_margin(&MarginCase { cos: Cos::F32(c), margin: m, easy, grad: g });
    }

    /// Target 1, structured: f64 cosines at the edges, every margin.
    #[test]
    fn prop_margin_f64(c in edge_cos_f64(), m in edge_margin(), easy: bool, g in grad_mode()) {
        check_margin(&MarginCase { cos: Cos::F64(c), margin: m, easy, grad: g });
    }

    /// Target 1 through the fuzzer's decoder.
    #[test]
    fn prop_margin_bytes(b in prop::collection::vec(any::<u8>(), 0..24)) {
        run_margin(&b);
    }

    /// Target 3 through the fuzzer's decoder.
    #[test]
    fn prop_margins_file_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        run_file(&b);
    }

    /// Target 3b through the fuzzer's decoder.
    #[test]
    fn prop_adaptive_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        run_adaptive(&b);
    }
}

/// A line of a margins file: mostly valid numbers, sometimes a token the
/// D10 grammar rejects.
fn file_line() -> impl Strategy<Value = String> {
    let number = (any::<i32>(), 0u32..4, -40i32..40, 0usize..3).prop_map(|(m, frac, e, style)| {
        let s = format!("{}", m as f64 / 10f64.powi(frac as i32));
        match style {
            0 => s,
            1 => format!("{s}e{e}"),
            _ => format!(" \t{s}E+{} ", e.abs()),
        }
    });
    prop_oneof![
        8 => number,
        1 => prop::sample::select(vec![
            "", " ", "inf", "nan", "-inf", "0,5", "1_0.5", "0.1 0.2", ".", "e5", "1e", "+-1",
            "1e400", "\u{feff}0.5", "0x10", "１", "5.5.5", "- 1",
        ])
        .prop_map(str::to_owned),
    ]
}

proptest! {
    #![proptest_config(cfg(256))]

    /// Target 3, structured: well-formed files with random line ends, a bad
    /// line now and then, and a class count near the line count.
    #[test]
    fn prop_margins_file_lines(
        lines in prop::collection::vec(file_line(), 0..12),
        ends in prop::collection::vec(prop::sample::select(vec!["\n", "\r\n", "\r"]), 12),
        final_end: bool,
        nc_delta in -1i64..=1,
        via_load: bool,
    ) {
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            text.push_str(l);
            if i + 1 < lines.len() || final_end {
                text.push_str(ends[i]);
            }
        }
        let nc = (lines.len() as i64 + nc_delta).max(0) as usize;
        check_file(&FileCase { num_classes: nc, via_load, bytes: text.into_bytes() });
    }

    /// Target 3b, structured: real label lists and parameters.
    #[test]
    fn prop_adaptive(
        nc in 1usize..40,
        raw in prop::collection::vec(any::<u16>(), 0..200),
        min in edge_margin(),
        max in edge_margin(),
        power in prop_oneof![Just(-0.25f64), Just(0.0), -3.0f64..3.0, any::<f64>()],
        bad in prop::option::of(prop_oneof![Just(-1i64), Just(i64::MIN), Just(i64::MAX), Just(40i64)]),
    ) {
        let mut labels: Vec<i64> = raw.iter().map(|&r| (r as usize % nc) as i64).collect();
        if let (Some(b), false) = (bad, labels.is_empty()) {
            let at = raw[0] as usize % labels.len();
            labels[at] = b;
        }
        check_adaptive(&AdaptiveCase {
            params: AdaptiveMargins { margin_min: min, margin_max: max, power },
            labels,
            num_classes: nc,
        });
    }
}

/// A valid step case: finite moderate data, labels in range, right shapes,
/// with zero rows, duplicated weight rows and features parallel to weight
/// rows mixed in. The checker then demands `Ok` with finite results.
fn valid_step() -> impl Strategy<Value = StepCase> {
    (
        1usize..=8,
        1usize..=12,
        1usize..=8,
        1usize..=4,
        any::<bool>(),
    )
        .prop_flat_map(|(n, d, c, k, f64_path)| {
            let val = prop_oneof![
                6 => -4.0f64..4.0,
                1 => Just(0.0),
                1 => (-60i32..60).prop_map(|e| 2f64.powi(e)),
            ];
            (
                prop::collection::vec(val.clone(), c * k * d),
                prop::collection::vec(val.clone(), n * d),
                prop::collection::vec(0..c as i64, n),
                prop::collection::vec((0usize..4, any::<prop::sample::Index>()), n),
                prop::collection::vec(any::<prop::sample::Index>(), c * k),
                prop::option::of(prop::collection::vec(0.0f64..1.0, n * c)),
                prop::option::of(prop::collection::vec(0.0f64..3.0, n)),
                (
                    edge_margin().prop_filter("finite", |m| m.is_finite() && m.abs() < 1e6),
                    prop_oneof![Just(64.0f64), Just(1.0), Just(0.0), -100.0f64..100.0],
                    any::<bool>(),
                    grad_mode(),
                    0usize..6,
                    0usize..3,
                ),
            )
                .prop_map(move |(mut w, mut x, labels, xrow, wdup, soft, sw, misc)| {
                    let (margin, scale, easy, grad, loss_kind, red) = misc;
                    let rows = c * k;
                    // weight rows: some duplicates of other rows, some zero
                    for (r, idx) in wdup.iter().enumerate() {
                        let src = idx.index(rows);
                        if r % 3 == 1 && src != r {
                            let copy = w[src * d..(src + 1) * d].to_vec();
                            w[r * d..(r + 1) * d].copy_from_slice(&copy);
                        } else if r % 5 == 4 {
                            w[r * d..(r + 1) * d].fill(0.0);
                        }
                    }
                    // feature rows: exact copies / negations of weight rows, zero rows
                    for (i, (kind, idx)) in xrow.iter().enumerate() {
                        let r = idx.index(rows);
                        let src = w[r * d..(r + 1) * d].to_vec();
                        let dst = &mut x[i * d..(i + 1) * d];
                        match kind {
                            0 => dst.copy_from_slice(&src),
                            1 => dst.iter_mut().zip(&src).for_each(|(a, b)| *a = -b),
                            2 => dst.fill(0.0),
                            _ => {}
                        }
                    }
                    let reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][red];
                    let loss = match loss_kind {
                        0 | 1 => LossConfig::cross_entropy(),
                        2 => LossConfig::label_smooth(0.1),
                        3 => LossConfig::cross_entropy().with_loss_weight(0.5),
                        4 => LossConfig::cross_entropy()
                            .with_class_weight((0..c).map(|j| 0.5 + j as f64).collect()),
                        _ => LossConfig::cross_entropy().with_use_soft(true),
                    }
                    .with_reduction(reduction);
                    let soft = if loss.use_soft {
                        Some(soft.unwrap_or(vec![0.5; n * c]))
                    } else {
                        soft
                    };
                    StepCase {
                        f64_path,
                        n,
                        d,
                        c,
                        k,
                        scale,
                        margins: vec![margin; c],
                        easy,
                        grad,
                        loss,
                        threads: Threads::Sequential,
                        weight: w,
                        features: x,
                        labels,
                        soft,
                        sample_weights: sw,
                        ws_capacity: n,
                        foreign_workspace: false,
                        lr: 0.1,
                        new_margins: vec![0.3; c],
                        adaptive_labels: vec![0],
                    }
                })
        })
}

proptest! {
    #![proptest_config(cfg(96))]

    /// Target 2, structured: valid batches must give finite losses and
    /// gradients (and everything else `check_step` asks).
    #[test]
    fn prop_step_valid(case in valid_step()) {
        check_step(&case);
    }

    /// Target 2 through the fuzzer's decoder (mostly error paths).
    #[test]
    fn prop_step_bytes(b in prop::collection::vec(any::<u8>(), 0..400)) {
        run_step(&b);
    }
}

// ------------------------------------------------------------------ regressions

/// Sanity of the test plumbing: the tolerance of `check_margin_t` is tight
/// enough to see a wrong formula (`cos(θ − m)` instead of `cos(θ + m)`).
#[test]
fn margin_checker_rejects_a_wrong_formula() {
    let c = 0.6f32;
    let k = MarginConstants::new(0.5);
    let (v, _, _) = margin_target(c, &k, false, MarginGrad::Exact);
    let wrong = ((c as f64).acos() - 0.5).cos();
    let tol = 4.0 * (f32::EPSILON as f64 / 2.0 + f64::EPSILON / 2.0) * 3.5;
    assert!((v as f64 - wrong).abs() > 1e3 * tol);
}

/// Sanity: the oracle and the parser agree on the documented examples.
#[test]
fn margins_file_oracle_matches_docs() {
    assert_eq!(
        oracle_margins_file("0.1\r\n 0.2\t\n3e-1", 3),
        Ok(vec![0.1, 0.2, 0.3])
    );
    assert_eq!(oracle_margins_file("0.1\n\n0.3\n", 3), Err(2));
    assert_eq!(
        parse_margins_file("0.1\r\n 0.2\t\n3e-1", 3).unwrap(),
        vec![0.1, 0.2, 0.3]
    );
    assert_eq!(line_of_offset(b"a\rb\r\nc\nd", 7), 4);
}

/// Sanity: an error leaves a primed workspace's results as they were.
#[test]
fn step_error_keeps_previous_results() {
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 1).unwrap();
    let mut ws = Workspace::new(&head, 2);
    head.forward_backward(&Batch::new(&[1.0, 0.0], &[1]), &mut ws)
        .unwrap();
    let g = ws.grad_weight().to_vec();
    let err = head
        .forward_backward(&Batch::new(&[1.0, 0.0, 0.0, 1.0], &[1, 3]), &mut ws)
        .unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { sample: 1, .. }));
    assert_eq!(ws.grad_weight(), &g[..]);
    assert_eq!(ws.grad_features().len(), 2);
}

/// Replays one kept corpus file through its target's checker.
fn replay_file(target: &str, name: &str, check: fn(&[u8])) {
    let bytes = std::fs::read(corpus_dir(target).join(name))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}/{name}: {e}"));
    check(&bytes);
}

/// f32 `Workspace`/head results are all finite.
fn finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// Defect 1 (margin target): D7 accepts every finite margin, but in f32 a
/// margin beyond `f32::MAX` (≈ 3.4e38) rounds to ±∞, so `cos(θ + m)` is NaN
/// and the fallback `c − m sin m` is ±∞.
#[test]
fn regression_margin_beyond_f32_range_gives_finite_value() {
    for m in [1e39, -1e39, 1e150, f64::MAX] {
        let k = MarginConstants::new(m);
        for c in [1.0f32, 0.0, -0.99999046, -1.0] {
            for easy in [false, true] {
                for g in [MarginGrad::Exact, MarginGrad::StraightThrough] {
                    let (v, d, _) = margin_target(c, &k, easy, g);
                    assert!(
                        v.is_finite() && d.is_finite(),
                        "m = {m}, c = {c}: ({v}, {d})"
                    );
                }
            }
        }
    }
    replay_file("margin", "seed-margin-1e39-f32", run_margin);
    replay_file("margin", "seed-margin-f32-max-rounds-to-inf", run_margin);
}

/// Defect 1 through the head: scale 0 passes the scale-times-margin guard,
/// so an f32 head with margin 1e39 is built, and its loss is NaN (0 · NaN).
#[test]
fn regression_head_f32_margin_1e39_scale_0_loss_is_finite() {
    // 3.5e38 takes cos(θ + m) (threshold −0.93), 1e300 the fallback with
    // m sin m = −8.2e299; both overflow f32
    let cfg = HeadConfig::new(3, 2)
        .with_scale(0.0)
        .with_margins(Margins::PerClass(vec![3.5e38, 1e300, 0.5]));
    let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0, -1.0, 0.0]) else {
        return; // refusing the margin is a fix too
    };
    let mut ws = Workspace::new(&head, 2);
    let x = [1.0f32, 0.5, 0.5, 1.0];
    match head.forward_backward(&Batch::new(&x, &[0, 1]), &mut ws) {
        Ok(loss) => {
            assert!(loss.is_finite(), "loss {loss}");
            assert!(finite(ws.grad_features()) && finite(ws.grad_weight()));
        }
        Err(e) => assert!(is_overflow_error(&e), "{e:?}"),
    }
    let z = head.logits_train(&x, &[0, 1]).unwrap();
    assert!(finite(&z), "{z:?}");
}

/// Defect 2 (adaptive margins): `compute(&[0], usize::MAX)` panics with
/// "capacity overflow" (and sizes just below it abort in the allocator)
/// instead of returning an error; a bad label should be reported before
/// anything of size `num_classes` is allocated.
#[test]
fn regression_adaptive_margins_num_classes_beyond_memory_is_an_error() {
    let p = AdaptiveMargins::default();
    for nc in [usize::MAX, isize::MAX as usize, isize::MAX as usize / 8 + 1] {
        for labels in [&[0i64][..], &[-1], &[0, 7, 7]] {
            let r = std::panic::catch_unwind(|| p.compute(labels, nc));
            assert!(
                matches!(r, Ok(Err(_))),
                "compute({labels:?}, {nc}) should be an error"
            );
        }
    }
    replay_file(
        "adaptive_margins",
        "seed-num-classes-usize-max",
        run_adaptive,
    );
    replay_file(
        "adaptive_margins",
        "seed-num-classes-beyond-vec",
        run_adaptive,
    );
}

/// Defect 3 (margins file): `load_margins_file` numbers the line of invalid
/// UTF-8 by counting `\n` only, so a file with `\r` line ends (which the
/// parser accepts, D10) gets the wrong line in the error.
#[test]
fn regression_margins_file_invalid_utf8_after_cr_names_the_right_line() {
    let path = std::env::temp_dir().join(format!("arcface-regr-{}.txt", std::process::id()));
    for (bytes, line) in [
        (&b"0.5\r\xff\n"[..], 2),
        (b"0.5\r0.25\r\n\xfe", 3),
        (b"0.5\n0.25\r\n\xfe", 3),
        (b"\r\r\r\x80", 4),
    ] {
        std::fs::write(&path, bytes).unwrap();
        let r = arcface::load_margins_file(&path, 3);
        let _ = std::fs::remove_file(&path);
        match r {
            Err(Error::MarginsFile { line: got, .. }) => {
                assert_eq!(got, line, "{:?}", String::from_utf8_lossy(bytes))
            }
            other => panic!("{other:?}"),
        }
    }
    replay_file(
        "margins_file",
        "crash-invalid-utf8-after-cr-line-end",
        run_file,
    );
}

/// Defect 4 (step): `LossConfig::validate` checks class and loss weights
/// for finiteness in f64, but an f32 head rounds 2^128 to +∞, and the loss
/// becomes NaN (0 · ∞) or ∞ from a configuration every check accepted.
#[test]
fn regression_class_weight_beyond_f32_is_an_error_or_finite() {
    let w = [1.0f32, 0.0, 0.0, 1.0];
    for loss in [
        LossConfig::cross_entropy().with_class_weight(vec![2f64.powi(128), 1.0]),
        LossConfig::cross_entropy()
            .with_class_weight(vec![2f64.powi(128), 1.0])
            .with_loss_weight(0.0),
        LossConfig::cross_entropy().with_loss_weight(1e39),
    ] {
        let cfg = HeadConfig::new(2, 2).with_loss(loss.clone());
        let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg, &w) else {
            continue; // refusing it at construction is the fix proposed
        };
        let mut ws = Workspace::new(&head, 1);
        if let Ok(l) = head.forward_backward(&Batch::new(&[1.0, 0.5], &[0]), &mut ws) {
            assert!(
                l.is_finite() && finite(ws.grad_weight()),
                "{loss:?}: loss {l}"
            );
        }
    }
    replay_file("step", "crash-class-weight-beyond-f32", run_step);
}

/// Defect 5 (step): finite data whose loss overflows f32 (a sample weight
/// of f32::MAX times a loss weight of 4) gives `Ok(inf)`.
#[test]
fn regression_loss_overflow_is_an_error_not_inf() {
    let cfg = HeadConfig::new(2, 2).with_loss(
        LossConfig::cross_entropy()
            .with_loss_weight(4.0)
            .with_reduction(Reduction::Sum),
    );
    let head = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0]).unwrap();
    let mut ws = Workspace::new(&head, 1);
    let x = [0.0f32, 1.0];
    let batch = Batch::new(&x, &[0]).with_sample_weights(&[f32::MAX]);
    match head.forward_backward(&batch, &mut ws) {
        Ok(l) => assert!(l.is_finite() && finite(ws.sample_losses()), "loss {l}"),
        Err(e) => assert!(is_overflow_error(&e), "{e:?}"),
    }
}

/// Defect 6 (step): a feature row below the 1e-12 norm epsilon has the
/// normalisation Jacobian I/1e-12; with a large (accepted) scale the true
/// gradient exceeds f32 and `forward_backward` returns `Ok` with ±∞/NaN
/// gradients. Kept input: S = 7.7e25, zero features, zero weight rows.
#[test]
fn regression_gradient_overflow_sub_eps_features_huge_scale() {
    replay_file(
        "step",
        "crash-gradient-overflow-sub-eps-features-huge-scale",
        run_step,
    );
    // the largest scale a fixed head accepts still has to give finite
    // gradients or an overflow error
    for scale in [1e30, 1e27, 1e26, 1e25, 1e20] {
        let cfg = HeadConfig::new(2, 2).with_scale(scale);
        let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0]) else {
            continue; // refusing the scale up front is a fix too
        };
        let mut ws = Workspace::new(&head, 1);
        match head.forward_backward(&Batch::new(&[1e-20, 0.0], &[1]), &mut ws) {
            Ok(l) => assert!(
                l.is_finite() && finite(ws.grad_features()) && finite(ws.grad_weight()),
                "scale {scale}: loss {l}, grad_features {:?}",
                ws.grad_features()
            ),
            Err(e) => assert!(is_overflow_error(&e), "scale {scale}: {e:?}"),
        }
    }
}

/// Defect 7 (weights): a weight row of finite entries whose L2 norm exceeds
/// f32::MAX gets norm +∞, so its cosines come out 0 (silently wrong: the
/// true cosine below is 0.894) or NaN (∞/∞). It should be refused, or right.
#[test]
fn regression_weight_row_norm_beyond_f32_max() {
    let cfg = HeadConfig::new(2, 3).with_scale(1.0);
    for row0 in [[f32::MAX, f32::MAX / 2.0, 0.0], [f32::MAX, -f32::MAX, 0.0]] {
        let w = [row0[0], row0[1], row0[2], 0.0, 1.0, 0.0];
        let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg.clone(), &w) else {
            continue;
        };
        if let Ok(z) = head.logits(&[1.0, 0.0, 0.0, 1.0, -1.0, 0.5]) {
            let n0 = (row0[0] as f64).hypot(row0[1] as f64);
            let want = [row0[0] as f64 / n0, 0.0];
            assert!(finite(&z), "{z:?}");
            assert!((z[0] as f64 - want[0]).abs() < 1e-5, "{z:?} vs {want:?}");
        }
    }
    replay_file("step", "crash-weight-row-norm-beyond-f32", run_step);
}

/// Defect 7 for features: a row like (f32::MAX, f32::MAX) has norm +∞ and
/// is silently normalised to the zero vector.
#[test]
fn regression_feature_norm_beyond_f32_max() {
    let head = ArcFaceHead::<f32>::from_weight(
        HeadConfig::new(2, 2).with_scale(1.0),
        &[1.0, 0.0, 0.0, 1.0],
    )
    .unwrap();
    if let Ok(z) = head.logits(&[f32::MAX, f32::MAX]) {
        let c = std::f32::consts::FRAC_1_SQRT_2;
        assert!((z[0] - c).abs() < 1e-6 && (z[1] - c).abs() < 1e-6, "{z:?}");
    }
    replay_file("step", "crash-feature-norm-beyond-f32", run_step);
}

/// Defect 7 for training: an SGD step whose entries stay finite but whose
/// row norm overflows is accepted, and the row's cosines are then wrong. It
/// should be refused without writing (or give right cosines).
#[test]
fn regression_sgd_step_to_a_row_norm_beyond_f32() {
    let mut head = ArcFaceHead::<f32>::from_weight(
        HeadConfig::new(2, 2).with_scale(1.0),
        &[1e38, 1e38, 0.0, 1.0],
    )
    .unwrap();
    let before = head.weight().to_vec();
    let grad = [-2e38f32, -2e38, 0.0, 0.0];
    match head.sgd_step(&grad, 1.0) {
        Err(_) => assert_eq!(head.weight(), &before[..], "a refused step wrote"),
        Ok(()) => {
            let z = head.logits(&[1.0, 1.0]).unwrap();
            let c = std::f32::consts::FRAC_1_SQRT_2;
            assert!(
                (z[0] - 1.0).abs() < 1e-6 && (z[1] - c).abs() < 1e-6,
                "{z:?}"
            );
        }
    }
}

/// Defect 10 (step, found against the first overflow fix): an overflow
/// error must not leave a half-written workspace. With the loss check after
/// the per-sample losses are published, `sample_losses()` shows `[inf]`
/// beside the previous step's gradients; with the gradient check after the
/// backward pass, the gradients are overwritten. Either keep the previous
/// results or clear them (no losses, no feature gradients, zero weight
/// gradients).
#[test]
fn regression_overflow_error_leaves_no_partial_results() {
    replay_file(
        "step",
        "crash-overflow-error-leaves-partial-results",
        run_step,
    );
    for sw in [1e36f32, 1e37, 3e37, f32::MAX] {
        let cfg = HeadConfig::new(2, 2)
            .with_scale(30.0)
            .with_loss(LossConfig::cross_entropy().with_reduction(Reduction::Sum));
        let head = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0]).unwrap();
        let mut ws = Workspace::new(&head, 1);
        head.forward_backward(&Batch::new(&[1.0, 0.0], &[1]), &mut ws)
            .unwrap();
        let before = (
            ws.grad_features().to_vec(),
            ws.grad_weight().to_vec(),
            ws.sample_losses().to_vec(),
        );
        let x = [0.3f32, 1.0];
        let r = head.forward_backward(&Batch::new(&x, &[0]).with_sample_weights(&[sw]), &mut ws);
        let after = (
            ws.grad_features().to_vec(),
            ws.grad_weight().to_vec(),
            ws.sample_losses().to_vec(),
        );
        match r {
            Ok(l) => assert!(l.is_finite() && finite(&after.0) && finite(&after.1)),
            Err(e) => {
                assert!(is_overflow_error(&e), "{e:?}");
                let cleared =
                    after.0.is_empty() && after.2.is_empty() && after.1.iter().all(|&g| g == 0.0);
                assert!(
                    after == before || cleared,
                    "sample weight {sw}: {e:?} left {after:?} (before: {before:?})"
                );
            }
        }
    }
}
