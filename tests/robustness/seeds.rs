//! The committed seed corpus: for each fuzz target, inputs that start the
//! fuzzer at a named edge case, built here from the decoders' byte layouts
//! and kept in `fuzz/corpus/<target>/` byte for byte.

use crate::common::corpus::corpus_dir;

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
///
/// A table, one entry per seed, hence its length.
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
