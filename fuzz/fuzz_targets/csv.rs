//! Arbitrary bytes as a text table, through the program's CSV reader
//! (src/bin/arcface/data/csv.rs, compiled here as it is): features with and
//! without a label column, every separator given or detected, and labels.
//!
//! Invariants: no panic; an error is a non-empty reason that names a line
//! or the whole file; a table is a whole number of rows of a positive
//! width, its values finite, as many labels as rows when asked for, and
//! never more values than the text has bytes (so no allocation beyond a
//! small multiple of the input's size).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/bin/arcface/data/csv.rs"]
mod csv;

use csv::Delimiter;

fn check_table<T: arcface::Real>(text: &str, label_last: bool, sep: Option<Delimiter>) {
    match csv::table::<T>(text, label_last, sep) {
        Ok(t) => {
            assert!(t.d > 0 && !t.x.is_empty() && t.x.len() % t.d == 0);
            assert!(t.x.len() <= text.len());
            assert!(t.x.iter().all(|v| v.to_f64().is_finite()));
            let rows = t.x.len() / t.d;
            assert_eq!(t.y.len(), if label_last { rows } else { 0 });
        }
        Err(e) => assert!(e.starts_with("line ") || e.starts_with("holds "), "{e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let sep = match mode % 5 {
        0 => None,
        1 => Some(Delimiter::Comma),
        2 => Some(Delimiter::Semicolon),
        3 => Some(Delimiter::Tab),
        _ => Some(Delimiter::Space),
    };
    check_table::<f32>(&text, mode & 8 != 0, sep);
    check_table::<f64>(&text, mode & 8 == 0, sep);
    match csv::labels(&text) {
        Ok(y) => assert!(!y.is_empty() && y.len() <= text.len()),
        Err(e) => assert!(e.starts_with("line ") || e.starts_with("holds "), "{e}"),
    }
});
