//! Robustness invariants over the public API, shared by the stable tests
//! (`tests/robustness.rs`, `tests/robustness_checkpoint.rs`, through
//! `mod common`) and the cargo-fuzz targets in `fuzz/fuzz_targets/`
//! (nightly, libFuzzer), which include this file with
//! `#[path = "../../tests/common/invariants/mod.rs"]`. It therefore uses
//! nothing outside this directory and the `arcface` crate.
//!
//! Per entry point, one decoder turns raw bytes into a small, bounded case
//! and one checker asserts the invariants, so a corpus file means the same
//! thing to the fuzzer and to `cargo test`. The decoders never fail: a byte
//! that is not there reads as 0, so every input, however short, is a case.
//!
//! Bounds (so that one execution takes microseconds): N ≤ 16 samples,
//! D ≤ 64 channels, C ≤ 32 classes, K ≤ 4 sub-centres; margins files of at
//! most the input's length; adaptive margins over at most 256 labels and
//! `num_classes` ≤ 64 or beyond what a `Vec<f64>` can hold; checkpoints of
//! at most 4×4 weights or the input's bytes.
//!
//! | module | entry point | fuzz target |
//! |---|---|---|
//! | [`margin`] | `margin_target` | `margin` |
//! | [`step_case`], [`step`] | a training step and the calls around it | `step` |
//! | [`sampled`] | `PartialFc` steps on the same cases | `step` |
//! | [`lifecycle`] | `enrol`, `retire`, `remove_classes` on a step case | `step` |
//! | [`clean`] | `clean`, `to_single_centre` on the step's head and batch | `step` |
//! | [`margins_file`] | `parse_margins_file`, `load_margins_file` | `margins_file` |
//! | [`adaptive`] | `AdaptiveMargins::compute` | `adaptive_margins` |
//! | [`checkpoint`] | `Checkpoint::from_bytes`, `to_bytes`, `to_head` | `checkpoint` |
#![allow(dead_code)]

pub mod adaptive;
pub mod bytes;
pub mod checkpoint;
pub mod clean;
pub mod lifecycle;
pub mod margin;
pub mod margins_file;
pub mod sampled;
pub mod step;
pub mod step_case;
