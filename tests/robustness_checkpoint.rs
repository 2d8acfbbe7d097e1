//! Robustness of checkpoint reading, on stable Rust: the committed corpus
//! of `fuzz/corpus/checkpoint/`, proptest over the fuzzer's decoder, and
//! named regressions. The invariants are in
//! `tests/common/invariants/checkpoint.rs`, shared with the `checkpoint`
//! fuzz target. Tests that may allocate what a file says run in a child
//! process, so that an abort fails them alone.

mod common;

use arcface::{ArcFaceHead, Checkpoint, HeadConfig, Margins, WeightDtype};
use common::corpus::{corpus_dir, in_child, replay};
use common::invariants::checkpoint::{check_checkpoint, decode_checkpoint};
use proptest::prelude::*;

fn run(b: &[u8]) {
    check_checkpoint(&decode_checkpoint(b))
}

/// A valid metadata object for a (2·1, 2) head, with `edit` applied to the
/// `head` part (a JSON fragment spliced in place of the default fields).
fn meta(head_fields: &str) -> String {
    format!(
        "{{\"format_version\":1,\"head\":{{\"type\":\"ArcFaceClsHead\",{head_fields},\
         \"scale\":64.0,\"easy_margin\":false,\"loss\":{{\"type\":\"CrossEntropyLoss\",\
         \"use_soft\":false,\"reduction\":\"mean\",\"loss_weight\":1.0}}}},\
         \"margin_grad\":\"exact\",\"extra\":{{}}}}"
    )
}

/// Mode-2 input: dtype F32, shape rows×cols, zero weights, `meta` as the
/// metadata string.
fn mode2(rows: u8, cols: u8, meta: &str) -> Vec<u8> {
    let mut v = vec![2u8, 0, rows, cols];
    v.extend(std::iter::repeat_n(0x3f, rows as usize * cols as usize * 4));
    v.extend_from_slice(meta.as_bytes());
    v
}

/// The committed seeds: (file name, bytes). A table, one entry per seed,
/// hence its length.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, dtype) in [
        WeightDtype::F32,
        WeightDtype::F16,
        WeightDtype::BF16,
        WeightDtype::F64,
    ]
    .into_iter()
    .enumerate()
    {
        let head = ArcFaceHead::<f32>::new(
            HeadConfig::new(3, 4)
                .with_subcenters(2)
                .with_margins(Margins::PerClass(vec![0.1, 0.5, 3.0])),
            i as u64,
        )
        .unwrap();
        let mut v = vec![0u8];
        v.extend(
            Checkpoint::from_head(&head, dtype)
                .unwrap()
                .to_bytes()
                .unwrap(),
        );
        let name = [
            "seed-valid-f32",
            "seed-valid-f16",
            "seed-valid-bf16",
            "seed-valid-f64",
        ][i];
        out.push((name, v));
    }
    out.push((
        "seed-mutated-small-head",
        vec![
            1, 1, 1, 2, 0, 60, 70, 0, 30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 2, 8, 0, 0xff, 40,
            0, 1,
        ],
    ));
    out.push(("seed-plain-pytorch-export", {
        let mut v = vec![2u8, 0, 2, 2];
        v.extend([0u8; 16]);
        v
    }));
    let std_fields =
        "\"num_classes\":2,\"in_channels\":2,\"num_subcenters\":1,\"margins\":[0.5,0.5]";
    out.push(("seed-metadata-valid", mode2(2, 2, &meta(std_fields))));
    out.push((
        "seed-metadata-scalar-margin",
        mode2(
            2,
            2,
            &meta("\"num_classes\":2,\"in_channels\":2,\"num_subcenters\":1,\"margins\":0.5"),
        ),
    ));
    out.push((
        "seed-metadata-shape-mismatch",
        mode2(
            2,
            2,
            &meta("\"num_classes\":3,\"in_channels\":2,\"num_subcenters\":1,\"margins\":0.5"),
        ),
    ));
    out.push((
        "seed-metadata-num-classes-times-subcenters-overflows",
        mode2(
            2,
            2,
            &meta("\"num_classes\":9223372036854775809,\"in_channels\":2,\"num_subcenters\":2,\"margins\":0.5"),
        ),
    ));
    out.push((
        "seed-metadata-huge-num-classes-scalar-margin",
        mode2(
            2,
            2,
            &meta("\"num_classes\":1099511627776,\"in_channels\":2,\"num_subcenters\":1,\"margins\":0.5"),
        ),
    ));
    out.push((
        "seed-metadata-not-json",
        mode2(1, 1, "{\"format_version\":1,"),
    ));
    out.push(("seed-empty", vec![0]));
    out
}

/// Every seed is in `fuzz/corpus/checkpoint/`; write (or refresh) them with
/// `ARCFACE_WRITE_SEEDS=1 cargo test --release --test robustness_checkpoint`.
/// Only their presence is checked: the valid files come from the checkpoint
/// writer, whose bytes may change with its format, and a seed is only a
/// starting point for the fuzzer.
#[test]
fn checkpoint_seed_corpus_is_committed() {
    let write = std::env::var_os("ARCFACE_WRITE_SEEDS").is_some();
    let mut missing = Vec::new();
    for (name, bytes) in seeds() {
        let path = corpus_dir("checkpoint").join(name);
        if write {
            std::fs::create_dir_all(corpus_dir("checkpoint")).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if !path.is_file() {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "seeds missing: {missing:?}");
}

#[test]
fn corpus_checkpoint_replays_clean() {
    in_child("corpus_checkpoint_replays_clean", || {
        replay("checkpoint", run)
    });
}

fn runner() -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// Mutated valid checkpoints (mode 1) and raw bytes (mode 0). In a child
/// process, like every test here that may allocate what a file says.
#[test]
fn prop_checkpoint_mutated() {
    in_child("prop_checkpoint_mutated", || {
        let strategy = (0u8..2, prop::collection::vec(any::<u8>(), 0..96));
        runner()
            .run(&strategy, |(mode, b)| {
                let mut input = vec![mode];
                input.extend(b);
                run(&input);
                Ok(())
            })
            .unwrap();
    });
}

/// Fuzzer-written metadata (mode 2) around a valid object: numbers of any
/// size in the shape fields, scalar or list margins.
#[test]
fn prop_checkpoint_metadata() {
    in_child("prop_checkpoint_metadata", || {
        let strategy = (
            prop_oneof![0u64..6, any::<u64>()],
            prop_oneof![0u64..4, any::<u64>()],
            prop_oneof![0u64..4, any::<u64>()],
            any::<bool>(),
            0u8..5,
            0u8..5,
        );
        runner()
            .run(&strategy, |(nc, k, d, scalar, rows, cols)| {
                let margins = if scalar { "0.5" } else { "[0.5,0.25]" };
                let fields = format!(
                    "\"num_classes\":{nc},\"in_channels\":{d},\"num_subcenters\":{k},\"margins\":{margins}"
                );
                run(&mode2(rows, cols, &meta(&fields)));
                Ok(())
            })
            .unwrap();
    });
}

/// A metadata shape whose `num_classes * num_subcenters` overflows is a
/// typed error (not a panic, not a wrapped product that matches).
#[test]
fn checkpoint_metadata_shape_product_overflow_is_an_error() {
    let file = seeds()
        .into_iter()
        .find(|(n, _)| *n == "seed-metadata-num-classes-times-subcenters-overflows")
        .unwrap()
        .1;
    let r = std::panic::catch_unwind(|| Checkpoint::from_bytes(&decode_checkpoint(&file)));
    assert!(
        matches!(r, Ok(Err(_))),
        "should be an error, not a panic or Ok"
    );
    run(&file);
}

/// Found by the `checkpoint` fuzzer: `HeadConfig::validate` expands
/// `Margins::Uniform` into a `Vec` of `num_classes` values, and
/// `Checkpoint::from_bytes` validates the metadata's configuration before
/// comparing its shape with the tensor's. A 459-byte file saying
/// `num_classes: 2^40` with a scalar margin makes an 8 TiB allocation and
/// aborts the process.
#[test]
fn regression_checkpoint_metadata_huge_num_classes_scalar_margin() {
    in_child(
        "regression_checkpoint_metadata_huge_num_classes_scalar_margin",
        || {
            let file = std::fs::read(
                corpus_dir("checkpoint").join("seed-metadata-huge-num-classes-scalar-margin"),
            )
            .unwrap();
            assert!(Checkpoint::from_bytes(&decode_checkpoint(&file)).is_err());
        },
    );
}

/// The same without a file: validating a configuration, or building a head
/// from a (wrong-length) weight, allocates `num_classes` margins first.
#[test]
fn regression_config_validate_does_not_allocate_per_class_margins() {
    in_child(
        "regression_config_validate_does_not_allocate_per_class_margins",
        || {
            let cfg = HeadConfig::new(1 << 40, 2);
            let _ = cfg.validate();
            assert!(ArcFaceHead::<f32>::from_weight(cfg, &[0.0; 4]).is_err());
        },
    );
}

/// A sanity check of the hand-built files: the valid metadata seed loads.
#[test]
fn hand_built_metadata_file_loads() {
    let file = decode_checkpoint(&mode2(
        2,
        2,
        &meta("\"num_classes\":2,\"in_channels\":2,\"num_subcenters\":1,\"margins\":[0.5,0.5]"),
    ));
    let ck = Checkpoint::from_bytes(&file).unwrap();
    assert_eq!(ck.shape(), (2, 2));
    let head: ArcFaceHead<f32> = ck.to_head(None).unwrap();
    assert_eq!(head.margins(), &[0.5, 0.5]);
}
