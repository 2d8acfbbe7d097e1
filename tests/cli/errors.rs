//! Bad files and bad flags: clear errors, the right exit status, nothing
//! written.

use super::*;

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
#[test]
fn bad_files_give_clear_errors_and_write_nothing() {
    let dir = Dir::new("bad");
    let (x, y) = clusters(3, 4, 12, 0.5, 4);
    let good_x = dir.write("x.npy", &npy("<f4", &[12, 4], &f32s(&x)));
    let good_y = dir.write("y.npy", &npy("<i8", &[12], &i64s(&y)));
    let full = npy("<f4", &[12, 4], &f32s(&x));
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        // (file name, bytes, is it the features file?, expected message)
        (
            "trunc.npy",
            full[..full.len() - 5].to_vec(),
            true,
            "is truncated",
        ),
        (
            "header.npy",
            full[..40].to_vec(),
            true,
            "truncated .npy header",
        ),
        (
            "int.npy",
            npy("<i8", &[12, 4], &vec![0u8; 12 * 4 * 8]),
            true,
            "int64 ('<i8'); features must be float32",
        ),
        (
            "big.npy",
            npy(">f4", &[12, 4], &f32s(&x)),
            true,
            "big-endian",
        ),
        (
            "fortran.npy",
            npy_with("<f4", "True", &[12, 4], &f32s(&x)),
            true,
            "Fortran",
        ),
        (
            "flat.npy",
            npy("<f4", &[48], &f32s(&x)),
            true,
            "features must be a non-empty 2-D array",
        ),
        (
            "nan.npy",
            npy(
                "<f4",
                &[12, 4],
                &f32s(&[&x[..5], &[f32::NAN], &x[6..]].concat()),
            ),
            true,
            "row 1, column 1",
        ),
        (
            "junk.npy",
            b"PK\x03\x04 not numpy".to_vec(),
            true,
            "neither a .npy file",
        ),
        (
            "fl.npy",
            npy("<f4", &[12], &f32s(&[0.0; 12])),
            false,
            "labels must be int64",
        ),
        (
            "two.npy",
            npy("<i8", &[6, 2], &i64s(&y)),
            false,
            "labels must be a non-empty 1-D array",
        ),
        (
            "few.npy",
            npy("<i8", &[11], &i64s(&y[..11])),
            false,
            "holds 11 labels but",
        ),
        (
            "neg.npy",
            npy("<i8", &[12], &i64s(&[&y[..3], &[-2], &y[4..]].concat())),
            false,
            "label -2 of sample 3 is negative",
        ),
        (
            "trail.npy",
            [npy("<i8", &[12], &i64s(&y)), vec![0u8; 3]].concat(),
            false,
            "3 bytes after the data",
        ),
        (
            "ragged.csv",
            b"1,2,3\n4,5\n".to_vec(),
            true,
            "line 2 has 2 fields",
        ),
        (
            "word.csv",
            b"1\n2\nthree\n".to_vec(),
            false,
            "line 3: \"three\" is not an integer label",
        ),
    ];
    let outs = [
        "--out",
        "o.safetensors",
        "--metrics",
        "m.jsonl",
        "--curves",
        "c.svg",
    ];
    for (name, bytes, is_x, needle) in &cases {
        let f = dir.write(name, bytes);
        let (xf, yf) = if *is_x {
            (f.as_str(), good_y.as_str())
        } else {
            (good_x.as_str(), f.as_str())
        };
        let mut args = vec!["train", "--features", xf, "--labels", yf];
        args.extend(outs);
        let se = fails(&dir, &args, 1);
        assert!(se.contains(name), "{name}: {se}");
        assert!(
            se.contains(needle),
            "{name}: {se} should contain {needle:?}"
        );
        std::fs::remove_file(dir.path(name)).unwrap();
        assert_eq!(
            dir.files(),
            BTreeSet::from(["x.npy".into(), "y.npy".into()]),
            "{name}: something was written"
        );
    }
    // labels beyond --num-classes
    let mut args = vec![
        "train",
        "--features",
        &good_x,
        "--labels",
        &good_y,
        "--num-classes",
        "2",
    ];
    args.extend(outs);
    let se = fails(&dir, &args, 1);
    assert!(
        se.contains("y.npy") && se.contains("is outside 0..2 (--num-classes)"),
        "{se}"
    );
    // validation features of another width
    let vx = dir.write("vx.npy", &npy("<f4", &[3, 5], &f32s(&[0.5; 15])));
    let vy = dir.write("vy.npy", &npy("<i8", &[3], &i64s(&[0, 1, 2])));
    let mut args = vec![
        "train",
        "--features",
        &good_x,
        "--labels",
        &good_y,
        "--val-features",
        &vx,
        "--val-labels",
        &vy,
    ];
    args.extend(outs);
    let se = fails(&dir, &args, 1);
    assert!(se.contains("vx.npy") && se.contains("5 columns"), "{se}");
    std::fs::remove_file(dir.path("vx.npy")).unwrap();
    std::fs::remove_file(dir.path("vy.npy")).unwrap();
    assert_eq!(
        dir.files(),
        BTreeSet::from(["x.npy".into(), "y.npy".into()])
    );
    // a missing file
    let se = fails(
        &dir,
        &[
            "train",
            "--features",
            "nope.npy",
            "--labels",
            &good_y,
            "--out",
            "o.safetensors",
        ],
        1,
    );
    assert!(se.contains("nope.npy"), "{se}");
    // eval: a checkpoint that is not one, and features of the wrong width
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &good_x,
            "--labels",
            &good_y,
            "--epochs",
            "1",
            "--out",
            "h.safetensors",
        ],
    );
    let fake = dir.write("fake.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{}");
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            &fake,
            "--features",
            &good_x,
            "--labels",
            &good_y,
        ],
        1,
    );
    assert!(
        se.contains("fake.safetensors") && se.contains("safetensors"),
        "{se}"
    );
    let wide = dir.write("wide.npy", &npy("<f4", &[2, 3], &f32s(&[1.0; 6])));
    let se = fails(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "h.safetensors",
            "--features",
            &wide,
            "--output",
            "p.json",
        ],
        1,
    );
    assert!(
        se.contains("wide.npy") && se.contains("in_channels = 4"),
        "{se}"
    );
    assert!(!dir.path("p.json").exists());
    let lab = dir.write("lab.npy", &npy("<i8", &[12], &i64s(&[7; 12])));
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "h.safetensors",
            "--features",
            &good_x,
            "--labels",
            &lab,
        ],
        1,
    );
    assert!(se.contains("label 7 of sample 0 is outside 0..3"), "{se}");
}

#[test]
fn usage_errors_are_explained() {
    let dir = Dir::new("usage");
    let se = fails(&dir, &["train", "--num-subcentres", "3"], 2);
    assert!(
        se.contains("a similar argument exists: '--num-subcenters'"),
        "{se}"
    );
    assert!(fails(&dir, &["train", "--scale"], 2).contains("a value is required for '--scale"));
    assert!(
        fails(&dir, &["train", "--scale", "big"], 2).contains("invalid value 'big' for '--scale")
    );
    assert!(fails(&dir, &["train", "--data", "mnist"], 2).contains("digits, synthetic"));
    assert!(fails(
        &dir,
        &["train", "--data", "digits", "--features", "x.npy"],
        2
    )
    .contains("cannot be used with '--features"));
    assert!(fails(&dir, &["train", "--epochs", "2", "--epochs", "3"], 2)
        .contains("'--epochs <N>' cannot be used multiple times"));
    assert!(
        fails(&dir, &["train", "--out", "no/such/dir/h.safetensors"], 2).contains("does not exist")
    );
    assert!(fails(&dir, &["train", "--nesterov", "--momentum", "0"], 2)
        .contains("invalid value for '--nesterov'"));
    assert!(fails(
        &dir,
        &["train", "--optimizer", "AdamW", "--momentum", "0.9"],
        2
    )
    .contains("SGD option"));
    assert!(fails(&dir, &["fit"], 2).contains("unrecognized subcommand 'fit'"));
    assert!(fails(&dir, &["eval"], 2).contains("--checkpoint"));
    assert!(dir.files().is_empty());
    let (h, _) = ok(&dir, &["train", "--help"]);
    for flag in [
        "--num-subcenters <K>",
        "--scale <S>",
        "[default: 64]",
        "--margins",
        "--easy-margin",
        "--adaptive-margins",
        "--optimizer",
        "--nesterov",
        "--warmup-epochs",
        "--curves",
    ] {
        assert!(h.contains(flag), "help lacks {flag}");
    }
    let (h, _) = ok(&dir, &[]);
    assert!(h.contains("CC BY 4.0") && h.contains("predict"));
}

#[test]
fn a_bad_flag_value_exits_2_naming_the_flag() {
    let dir = Dir::new("badvalue");
    let cases: [(&[&str], &str); 10] = [
        (&["train", "--epochs", "ten"], "--epochs"),
        (&["train", "--threads", "-1"], "--threads"),
        (&["train", "--threads", "5000"], "--threads"),
        (&["train", "--dtype", "f16"], "--dtype"),
        (
            &["train", "--features", "x.npy", "--val-fraction", "1.5"],
            "--val-fraction",
        ),
        (
            &["train", "--out", "o.safetensors", "--weight-dtype", "int8"],
            "--weight-dtype",
        ),
        (
            &["train", "--optimizer", "adam", "--lr", "0.1"],
            "--optimizer",
        ),
        (
            &["eval", "--checkpoint", "c.safetensors", "--batch-size", "0"],
            "--batch-size",
        ),
        (
            &["predict", "--checkpoint", "c.safetensors", "--top-k", "0"],
            "--top-k",
        ),
        (
            &[
                "predict",
                "--checkpoint",
                "c.safetensors",
                "--format",
                "xml",
            ],
            "--format",
        ),
    ];
    for (args, flag) in cases {
        let se = fails(&dir, args, 2);
        assert!(se.contains(&format!("for '{flag} <")), "{args:?}: {se}");
    }
    assert!(dir.files().is_empty());
    // a negative number is a value, where the flag takes one
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--margins",
            "-0.1",
            "--adaptive-margins",
            "--power",
            "-1",
        ],
    );
}
