use super::*;

fn e(text: &str, label_last: bool) -> String {
    table::<f32>(text, label_last, None).unwrap_err()
}

#[test]
fn a_header_and_the_label_column_are_recognised() {
    let s = table::<f64>("a,b,label\n1,2,0\n# note\n\n3,4,1\n", true, None).unwrap();
    assert_eq!((s.x, s.y, s.d), (vec![1.0, 2.0, 3.0, 4.0], vec![0, 1], 2));
    let s = table::<f32>("1\t2\n3\t4\n", false, None).unwrap();
    assert_eq!((s.x.len(), s.y.len(), s.d), (4, 0, 2));
    let s = table::<f32>("a;b\n1.5;2\n", false, None).unwrap();
    assert_eq!((s.x, s.d), (vec![1.5, 2.0], 2));
}

#[test]
fn the_first_line_decides_the_separator() {
    assert_eq!(Delimiter::detect("1,5;2,5;0"), Delimiter::Semicolon);
    assert_eq!(Delimiter::detect("1.5\t2,5"), Delimiter::Tab);
    assert_eq!(Delimiter::detect("1.5,2"), Delimiter::Comma);
    assert_eq!(Delimiter::detect("1.0e+00  2.0e+00"), Delimiter::Space);
    assert_eq!(Delimiter::detect("7"), Delimiter::Comma);
    // a separator of another kind later in the file is not a separator
    assert_eq!(
        e("1,2,0\n3;4;1\n", true),
        "line 2 has 1 fields, the first data line has 3 (fields separated by ','; see --delimiter)"
    );
    assert_eq!(
        e("1,2\n3,4;5\n", false),
        "line 2, column 2: \"4;5\" is not a number (this file's fields are separated by ','; see --delimiter)"
    );
    // the given separator wins
    let s = table::<f32>("1,2\n1;2,3\n", false, Some(Delimiter::Comma));
    assert_eq!(
        s.unwrap_err(),
        "line 2, column 1: \"1;2\" is not a number (this file's fields are separated by ','; see --delimiter)"
    );
}

#[test]
fn a_decimal_comma_is_an_error_not_two_numbers() {
    assert_eq!(
        e("0,5;1,25;3\n0,7;2;1\n", true),
        "line 1, column 1: \"0,5\" is not a number (a decimal comma? numbers must use a decimal point)"
    );
    assert_eq!(
        e("f1\tf2\n0,5\t1\n", false),
        "line 2, column 1: \"0,5\" is not a number (a decimal comma? numbers must use a decimal point)"
    );
}

#[test]
fn space_separated_files_from_numpy_are_read() {
    let text = "1.000000000000000000e+00 -2.500000000000000000e-01 3.000000000000000000e+00\n\
                4.000000000000000000e+00  5.000000000000000000e+00 0.000000000000000000e+00\n";
    let s = table::<f64>(text, true, None).unwrap();
    assert_eq!((s.x, s.y, s.d), (vec![1.0, -0.25, 4.0, 5.0], vec![3, 0], 2));
    assert_eq!(labels("2.000000000000000000e+00\n1\n").unwrap(), vec![2, 1]);
}

#[test]
fn bad_tables_name_the_line() {
    assert_eq!(
        e("1,2,3\n4,5\n", false),
        "line 2 has 2 fields, the first data line has 3 (fields separated by ','; see --delimiter)"
    );
    assert_eq!(
        e("1,x\n2,y\n", false),
        "line 2, column 2: \"y\" is not a number"
    );
    assert_eq!(
        e("1,inf\n", false),
        "line 1, column 2: \"inf\" is not finite in f32"
    );
    assert_eq!(
        e("1,1e300\n", false),
        "line 1, column 2: \"1e300\" is not finite in f32"
    );
    assert!(table::<f64>("1,1e300\n", false, None).is_ok());
    assert_eq!(
        e("1,2.5\n", true),
        "line 1, last column: \"2.5\" is not an integer label"
    );
    assert_eq!(
        e("3\n", true),
        "line 1 has no feature columns (fields separated by ','; see --delimiter)"
    );
    assert_eq!(e("# only\n", false), "holds no data rows");
}

#[test]
fn labels_one_per_line() {
    assert_eq!(labels("label\n1\n\n2\n").unwrap(), vec![1, 2]);
    assert_eq!(
        labels("1\n2\nthree\n").unwrap_err(),
        "line 3: \"three\" is not an integer label"
    );
    assert!(labels("1,2\n")
        .unwrap_err()
        .contains("one integer per line"));
    assert!(labels("1 2\n")
        .unwrap_err()
        .contains("one integer per line"));
    assert_eq!(labels("header\n").unwrap_err(), "holds no labels");
}

/// The committed fuzz seeds (fuzz/corpus/csv) are read or refused without
/// a panic, as the fuzz target checks.
#[test]
fn the_fuzz_seeds_read_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/csv");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // a packaged crate ships no corpus
    };
    let mut seen = 0;
    for e in entries {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        // the target's first byte chooses the separator and the label column
        let text = String::from_utf8_lossy(bytes.get(1..).unwrap_or_default());
        for label_last in [false, true] {
            if let Ok(t) = table::<f32>(&text, label_last, None) {
                assert!(t.d > 0 && t.x.len() % t.d == 0 && t.x.len() <= text.len());
            }
        }
        let _ = labels(&text);
        seen += 1;
    }
    assert!(seen > 0);
}
