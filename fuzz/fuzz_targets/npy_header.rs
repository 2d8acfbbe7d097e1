//! Arbitrary bytes as a `.npy` file, through the program's parser
//! (src/bin/arcface/data/npy.rs, compiled here as it is): the container and
//! its Python-literal header, then features (f32 and f64) and labels.
//!
//! Invariants: no panic; an error is a non-empty reason; what is read is
//! consistent with the input and never larger than it (each element takes
//! at least 2 bytes of the file, so no allocation beyond a small multiple of
//! the input's size): features are finite, a whole number of rows of a
//! positive width; labels are not empty.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/bin/arcface/data/npy.rs"]
mod npy;

fn check_features<T: arcface::Real>(data: &[u8]) {
    match npy::features::<T>(data) {
        Ok((x, d)) => {
            assert!(d > 0 && !x.is_empty() && x.len() % d == 0);
            assert!(x.len() * 2 <= data.len());
            assert!(x.iter().all(|v| v.to_f64().is_finite()));
            let parsed = npy::parse(data).expect("features imply a valid container");
            assert!(["<f2", "<f4", "<f8"].contains(&parsed.descr.as_str()));
        }
        Err(e) => assert!(!e.0.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    match npy::parse(data) {
        Ok(a) => {
            assert!(a.data.len() <= data.len());
            assert!(data.starts_with(npy::MAGIC));
        }
        Err(e) => assert!(!e.0.is_empty()),
    }
    check_features::<f32>(data);
    check_features::<f64>(data);
    match npy::labels(data) {
        Ok(y) => assert!(!y.is_empty() && y.len() * 4 <= data.len()),
        Err(e) => assert!(!e.0.is_empty()),
    }
});
