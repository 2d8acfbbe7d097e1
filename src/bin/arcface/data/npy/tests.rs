use super::*;

/// A version-1 `.npy` file: `{'descr': .., 'fortran_order': .., 'shape': ..}`
/// padded to 64 bytes, then `data`.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn dict(descr: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn reason<T: std::fmt::Debug>(r: Result<T, NpyError>) -> String {
    r.unwrap_err().0
}

#[test]
fn features_of_each_float_width_are_read_row_by_row() {
    let x = [1.0f32, -2.5, 3.25, 0.0, 5.0, 6.5];
    let (v, d) = features::<f32>(&npy(&dict("<f4", "(2, 3)"), &f32s(&x))).unwrap();
    assert_eq!((v, d), (x.to_vec(), 3));
    let h: Vec<u8> = x
        .iter()
        .flat_map(|v| arcface::half::f16::from_f32(*v).to_le_bytes())
        .collect();
    let (v, _) = features::<f64>(&npy(&dict("<f2", "(3, 2)"), &h)).unwrap();
    assert_eq!(v, x.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let b: Vec<u8> = x.iter().flat_map(|v| (*v as f64).to_le_bytes()).collect();
    let (v, d) = features::<f32>(&npy(&dict("<f8", "(6, 1)"), &b)).unwrap();
    assert_eq!((v, d), (x.to_vec(), 1));
}

#[test]
fn labels_are_int64_or_int32_of_shape_n_or_n_by_1() {
    let y8: Vec<u8> = [3i64, -1, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(
        labels(&npy(&dict("<i8", "(3,)"), &y8)).unwrap(),
        vec![3, -1, 7]
    );
    let y4: Vec<u8> = [3i32, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(
        labels(&npy(&dict("<i4", "(2, 1)"), &y4)).unwrap(),
        vec![3, 4]
    );
    let e = reason(labels(&npy(&dict("<i8", "(1, 3)"), &y8)));
    assert!(e.contains("labels must be a non-empty 1-D array"), "{e}");
    let e = reason(labels(&npy(&dict("<u1", "(3,)"), &[1, 2, 3])));
    assert_eq!(
        e,
        "has dtype uint8 ('<u1'); labels must be int64 (or int32), little-endian"
    );
}

#[test]
fn headers_in_other_spellings_are_read() {
    // version 2 (u32 header length), double quotes, Python 2 longs, key order, an extra key
    let h = "{\"shape\": (2L, 1L), \"fortran_order\": False, \"extra\": 1, \"descr\": \"<f4\"}\n";
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&[2, 0]);
    b.extend_from_slice(&(h.len() as u32).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&f32s(&[1.0, 2.0]));
    let a = parse(&b).unwrap();
    assert_eq!(
        (a.descr.as_str(), a.shape.as_slice(), a.data.len()),
        ("<f4", &[2, 1][..], 8)
    );
    assert_eq!(features::<f32>(&b).unwrap(), (vec![1.0, 2.0], 1));
}

#[test]
fn every_malformed_header_is_an_error_that_says_why() {
    let cases: [(&str, &str); 11] = [
        (
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }",
            "Fortran",
        ),
        (
            "{'descr': ('a', '<f4'), 'fortran_order': False, 'shape': (1, 1)}",
            "structured arrays",
        ),
        (
            "{'fortran_order': False, 'shape': (1, 1)}",
            "has no 'descr'",
        ),
        ("{'descr': '<f4', 'fortran_order': False}", "has no 'shape'"),
        (
            "{'descr': '<f4', 'shape': (1, 1)}",
            "has no 'fortran_order'",
        ),
        (
            "{'descr': '<f4', 'fortran_order': maybe, 'shape': (1, 1)}",
            "(fortran_order)",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, x)}",
            "(shape)",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': 1}",
            "malformed .npy header",
        ),
        ("{'descr': '<f4", "unterminated string"),
        (
            "{'descr': '<f4', 'shape': (1, 1) @",
            "unexpected character '@'",
        ),
        (
            "{'descr': '<f4', 'shape': (99999999999999999999999, 1)}",
            "is too large",
        ),
    ];
    for (header, why) in cases {
        let e = reason(parse(&npy(header, &[0; 4])));
        assert!(e.contains(why), "{header}: {e}");
    }
}

#[test]
fn bad_containers_and_data_are_refused() {
    assert!(reason(parse(b"PK\x03\x04 not numpy")).contains("no \\x93NUMPY magic"));
    let mut v4 = npy(&dict("<f4", "(1, 1)"), &[0; 4]);
    v4[6] = 4;
    assert_eq!(reason(parse(&v4)), "unsupported .npy format version 4");
    let full = npy(&dict("<f4", "(2, 2)"), &f32s(&[1.0; 4]));
    assert_eq!(reason(parse(&full[..40])), "truncated .npy header");
    let mut latin = full.clone();
    latin[12] = 0xFF;
    assert_eq!(reason(parse(&latin)), ".npy header is not text");
    let e = reason(features::<f32>(&full[..full.len() - 5]));
    assert_eq!(
        e,
        "is truncated: its shape [2, 2] needs 16 bytes of data, the file holds 11"
    );
    let e = reason(features::<f32>(&[full.clone(), vec![0; 3]].concat()));
    assert_eq!(e, "has 3 bytes after the data its shape [2, 2] describes");
    let e = reason(features::<f32>(&npy(
        &dict(">f4", "(2, 2)"),
        &f32s(&[1.0; 4]),
    )));
    assert!(e.contains("float32 ('>f4', big-endian)"), "{e}");
    let e = reason(features::<f32>(&npy(
        &dict("<f4", "(4,)"),
        &f32s(&[1.0; 4]),
    )));
    assert!(e.contains("features must be a non-empty 2-D array"), "{e}");
    let e = reason(features::<f32>(&npy(&dict("<f4", "(0, 2)"), &[])));
    assert!(e.contains("has shape [0, 2]"), "{e}");
    let huge = dict("<f8", "(4294967296, 4294967296)");
    assert_eq!(
        reason(features::<f32>(&npy(&huge, &[]))),
        "shape is too large"
    );
    let nan = npy(&dict("<f4", "(2, 2)"), &f32s(&[1.0, 2.0, 3.0, f32::NAN]));
    assert_eq!(
        reason(features::<f32>(&nan)),
        "holds a NaN or infinite value at row 1, column 1"
    );
    // finite in f64, infinite in f32
    let big: Vec<u8> = [1e300f64, 1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let big = npy(&dict("<f8", "(1, 2)"), &big);
    assert!(features::<f64>(&big).is_ok());
    assert!(reason(features::<f32>(&big)).contains("row 0, column 0"));
}

/// Every prefix and every single-byte change of a valid file is read or
/// refused without a panic, and what is read never exceeds the input.
#[test]
fn no_prefix_or_byte_change_panics() {
    let y8: Vec<u8> = [1i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let files = [
        npy(&dict("<f4", "(2, 2)"), &f32s(&[1.0, 2.0, 3.0, 4.0])),
        npy(&dict("<i8", "(2,)"), &y8),
    ];
    let check = |b: &[u8]| {
        if let Ok((x, d)) = features::<f64>(b) {
            assert!(d > 0 && x.len() % d == 0 && x.len() * 2 <= b.len());
        }
        if let Ok(y) = labels(b) {
            assert!(y.len() * 4 <= b.len());
        }
    };
    for f in &files {
        for n in 0..=f.len() {
            check(&f[..n]);
        }
        for i in 0..f.len() {
            for v in [0u8, b'\'', b'(', b')', b',', b'9', b'L', 0x80, 0xFF] {
                let mut g = f.clone();
                g[i] = v;
                check(&g);
            }
        }
    }
}

/// The committed fuzz seeds (fuzz/corpus/npy_header) are read or refused
/// without a panic.
#[test]
fn the_fuzz_seeds_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/npy_header");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // a packaged crate ships no corpus
    };
    let mut n = 0;
    for e in entries {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let _ = features::<f32>(&bytes);
        let _ = labels(&bytes);
        n += 1;
    }
    assert!(n > 0);
}
