//! Helpers shared by the integration tests; each test binary includes them
//! with `mod common;` and uses what it needs.
//!
//! * [`data`]: seeded random data (uniform values, noisy class clusters),
//!   all from the crate's own `arcface::SplitMix64`.
//! * [`corpus`]: the committed fuzz corpus (`fuzz/corpus/<target>/`), its
//!   replay, and running a test in a child process.
//! * [`golden`]: the golden cases of `tests/golden/` (loader, comparison
//!   rule, independent references and one checker per case kind).
//! * [`noisy`]: synthetic embeddings with injected label noise (closed-set
//!   and open-set) and the cleaning recipes run on them.
//! * [`invariants`]: the robustness invariants, also included by the
//!   cargo-fuzz targets with `#[path]`.
#![allow(dead_code)]

pub mod corpus;
pub mod data;
pub mod golden;
pub mod invariants;
pub mod noisy;
