//! Arbitrary bytes, mutated valid checkpoints and fuzzer-written metadata
//! JSON through `Checkpoint::from_bytes`, `to_bytes` and `to_head`.
//!
//! Invariants (`tests/common/invariants/`, `check_checkpoint`): no
//! panic (overflow checks on), no allocation beyond the input's size; an
//! accepted checkpoint has rows × cols weights and survives a round trip
//! bit for bit; a head built from it is an error or gives finite logits.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants/mod.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::checkpoint::check_checkpoint(&invariants::checkpoint::decode_checkpoint(data));
});
