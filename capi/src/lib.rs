//! A C ABI for the `arcface` head: opaque handles (head, workspace,
//! optimiser, trainer), functions that return an [`ArcfaceStatus`], and a
//! thread-local message for the last error. The header `include/arcface.h`
//! is generated from this crate by cbindgen (`cbindgen.toml`; the test
//! `tests/header.rs` fails when the committed header drifts).
//!
//! `ffi` is the only module with `unsafe` code: it turns pointers into
//! references and slices (a NULL or misaligned pointer is an error), then
//! calls the safe code of `handles` in `status::guard`, which catches
//! every panic. Elements are f32; margins and learning rates f64; labels
//! int64; lengths `size_t` element counts.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod config;
#[allow(unsafe_code)]
mod ffi;
mod handles;
mod status;

pub use config::*;
pub use ffi::*;
pub use handles::{
    ArcfaceEpochCallback, ArcfaceEpochInfo, ArcfaceHead, ArcfaceOptimizer, ArcfaceTrainReport,
    ArcfaceTrainer, ArcfaceWorkspace,
};
pub use status::ArcfaceStatus;
