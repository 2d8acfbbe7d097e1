//! How inputs are read and refused: a bare weight's shape, the file an
//! error names, CSV separators, flags that only apply with others, bad flag
//! values, the precision of printed scores, and resuming a schedule.

use super::*;

/// The weight tensor of an arcface checkpoint (stored as F32).
fn weight_of(path: &Path) -> (Vec<f32>, usize, usize) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let h: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let t = &h["head.norm_product.weight"];
    assert_eq!(t["dtype"], "F32");
    let (rows, d) = (
        t["shape"][0].as_u64().unwrap() as usize,
        t["shape"][1].as_u64().unwrap() as usize,
    );
    let start = 8 + n + t["data_offsets"][0].as_u64().unwrap() as usize;
    let w = bytes[start..start + 4 * rows * d]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (w, rows, d)
}

fn eval_json(dir: &Dir, args: &[&str]) -> Value {
    let mut all = vec!["eval", "--format", "json"];
    all.extend(args);
    serde_json::from_str(ok(dir, &all).0.trim()).unwrap()
}

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
#[test]
fn a_bare_weight_whose_row_count_has_several_readings_needs_k_or_c() {
    let dir = Dir::new("bare");
    let (c, d, n) = (10, 16, 300);
    let (x, y) = clusters(c, d, n, 0.4, 11);
    let xf = dir.write("x.npy", &npy("<f4", &[n, d], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[n], &i64s(&y)));
    let data = ["--features", xf.as_str(), "--labels", yf.as_str()];
    let mut args = vec!["train", "--quiet", "--num-subcenters", "3", "--epochs", "5"];
    args.extend(data);
    args.extend(["--out", "h.safetensors"]);
    ok(&dir, &args);
    // the same weights as PyTorch exports them: (30, 16), no metadata
    let (w, rows, cols) = weight_of(&dir.path("h.safetensors"));
    assert_eq!((rows, cols), (30, 16));
    dir.write("bare.safetensors", &bare_checkpoint(&w, rows, cols));
    fn with<'a>(flags: &[&'a str], data: [&'a str; 4]) -> Vec<&'a str> {
        let mut a = vec!["--checkpoint", "bare.safetensors"];
        a.extend(flags);
        a.extend(data);
        a
    }
    for cmd in ["eval", "predict"] {
        let mut a = vec![cmd, "--checkpoint", "bare.safetensors", "--features", &xf];
        if cmd == "eval" {
            a.extend(["--labels", &yf]);
        }
        let se = fails(&dir, &a, 2);
        assert!(
            se.contains("bare.safetensors has no arcface metadata")
                && se.contains("30 classes × K = 1")
                && se.contains("10 classes × K = 3")
                && se.contains("give --num-subcenters K or --num-classes C"),
            "{se}"
        );
    }
    let reference = eval_json(
        &dir,
        &[
            "--checkpoint",
            "h.safetensors",
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
    );
    let by_k = eval_json(&dir, &with(&["--num-subcenters", "3"], data));
    let by_c = eval_json(&dir, &with(&["--num-classes", "10"], data));
    assert!(reference["top1"].as_f64().unwrap() > 0.9, "{reference}");
    for e in [&by_k, &by_c] {
        assert_eq!(
            (&e["top1"], &e["loss"]),
            (&reference["top1"], &reference["loss"])
        );
    }
    let (p, _) = ok(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "bare.safetensors",
            "--num-classes",
            "10",
            "--features",
            &xf,
            "--top-k",
            "1",
            "--format",
            "csv",
        ],
    );
    assert!(p
        .lines()
        .skip(1)
        .all(|l| l.split(',').nth(1).unwrap().parse::<usize>().unwrap() < 10));
    let se = fails(
        &dir,
        &{
            let mut a = vec!["eval"];
            a.extend(with(&["--num-classes", "7"], data));
            a
        },
        1,
    );
    assert!(
        se.contains("has 30 weight rows, not a multiple of --num-classes 7"),
        "{se}"
    );
    // a prime row count has one reading
    let w7: Vec<f32> = w[..7 * cols].to_vec();
    dir.write("seven.safetensors", &bare_checkpoint(&w7, 7, cols));
    let y7: Vec<i64> = y.iter().map(|l| l % 7).collect();
    let y7f = dir.write("y7.npy", &npy("<i8", &[n], &i64s(&y7)));
    eval_json(
        &dir,
        &[
            "--checkpoint",
            "seven.safetensors",
            "--features",
            &xf,
            "--labels",
            &y7f,
        ],
    );
}

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
#[test]
fn errors_name_the_file_they_are_about() {
    let dir = Dir::new("naming");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--out",
            "d.safetensors",
        ],
    );
    let (x, y) = clusters(3, 4, 12, 0.5, 4);
    let xf = dir.write("x.npy", &npy("<f4", &[12, 4], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[12], &i64s(&y)));
    // features of another width than the checkpoint's standardisation: the features file
    let se = fails(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--init",
            "d.safetensors",
        ],
        1,
    );
    assert!(
        se.starts_with(&format!("error: {xf}: has 4 feature columns, the standardisation stored in d.safetensors has 64")),
        "{se}"
    );
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "d.safetensors",
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
        1,
    );
    assert!(
        se.starts_with(&format!("error: {xf}: ")) && !se.contains("y.npy"),
        "{se}"
    );
    // a margins file's error names it
    let w: Vec<f32> = (0..3 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
    dir.write("t.safetensors", &bare_checkpoint(&w, 3, 4));
    let bad = dir.write("bad.txt", b"0.3\nabc\n0.3\n");
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "t.safetensors",
            "--margins",
            &bad,
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
        1,
    );
    assert!(
        se.starts_with(&format!("error: {bad}: ")) && se.contains("line 2"),
        "{se}"
    );
    // a weight's error names the checkpoint
    let mut wn = w.clone();
    wn[6] = f32::NAN;
    dir.write("nan.safetensors", &bare_checkpoint(&wn, 3, 4));
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "nan.safetensors",
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
        1,
    );
    assert!(
        se.contains("nan.safetensors") && se.contains("row 1"),
        "{se}"
    );
}

/// A number as NumPy's `np.savetxt` writes it (`%.18e`): `1.000000000000000000e+00`.
fn savetxt(v: f64) -> String {
    let s = format!("{v:.18e}");
    let (mantissa, exp) = s.split_once('e').unwrap();
    let e: i32 = exp.parse().unwrap();
    format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

#[test]
fn a_csv_file_has_one_separator_which_the_first_line_or_delimiter_gives() {
    let dir = Dir::new("separators");
    // a decimal comma is an error, not two numbers
    let dc = dir.write("dc.csv", b"f1;f2;label\n0,5;1,25;0\n0,75;2;1\n");
    let se = fails(&dir, &["train", "--quiet", "--features", &dc], 1);
    assert!(
        se.contains("dc.csv: line 2, column 1: \"0,5\" is not a number (a decimal comma?"),
        "{se}"
    );
    // one separator per file
    let mixed = dir.write("mixed.csv", b"1,2,0\n3;4;1\n");
    let se = fails(&dir, &["train", "--quiet", "--features", &mixed], 1);
    assert!(se.contains("mixed.csv: line 2 has 1 fields"), "{se}");
    // np.savetxt: spaces, and labels written as numbers
    let (x, y) = clusters(4, 6, 200, 0.4, 3);
    let mut text = String::new();
    for (row, l) in x.chunks(6).zip(&y) {
        let cells: Vec<String> = row.iter().map(|v| savetxt(*v as f64)).collect();
        text.push_str(&format!("{} {}\n", cells.join(" "), savetxt(*l as f64)));
    }
    let st = dir.write("s.txt", text.as_bytes());
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &st,
            "--val-fraction",
            "0.2",
            "--epochs",
            "3",
            "--metrics",
            "m.jsonl",
        ],
    );
    assert!(summary(&dir.path("m.jsonl"))["test_top1"].as_f64().unwrap() > 0.9);
    // --delimiter overrides the first line
    let semi = dir.write("semi.csv", b"1;2;0\n3;4;1\n");
    let se = fails(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &semi,
            "--delimiter",
            "comma",
        ],
        1,
    );
    assert!(se.contains("see --delimiter"), "{se}");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--features",
            &semi,
            "--delimiter",
            ";",
        ],
    );
}

#[test]
fn synthetic_flags_without_data_synthetic_are_usage_errors() {
    let dir = Dir::new("synthflags");
    for args in [
        &["train", "--synthetic-dim", "8"][..],
        &["train", "--data", "digits", "--synthetic-classes", "5"],
        &[
            "train",
            "--features",
            "x.npy",
            "--labels",
            "y.npy",
            "--synthetic-seed",
            "1",
        ],
        &[
            "eval",
            "--checkpoint",
            "none.safetensors",
            "--synthetic-seed",
            "1",
        ],
        &[
            "predict",
            "--checkpoint",
            "none.safetensors",
            "--synthetic-dim",
            "8",
        ],
    ] {
        let se = fails(&dir, args, 2);
        assert!(
            se.contains("applies to --data synthetic only"),
            "{args:?}: {se}"
        );
    }
    assert!(dir.files().is_empty());
}

#[test]
fn every_bad_flag_value_exits_2_naming_its_flag() {
    let dir = Dir::new("flagvalues");
    let cases: [(&[&str], &str); 16] = [
        (&["train", "--lr", "-1"], "--lr"),
        (&["train", "--epochs", "0"], "--epochs"),
        (&["train", "--batch-size", "0"], "--batch-size"),
        (&["train", "--momentum", "-0.5"], "--momentum"),
        (
            &["train", "--optimizer", "AdamW", "--betas", "0.9,1.5"],
            "--betas",
        ),
        (&["train", "--optimizer", "AdamW", "--eps", "-1"], "--eps"),
        (
            &["train", "--label-smooth-val", "1.5"],
            "--label-smooth-val",
        ),
        (
            &["train", "--epochs", "2", "--warmup-epochs", "5"],
            "--warmup-epochs",
        ),
        (
            &["train", "--lr-schedule", "step", "--gamma", "-1"],
            "--gamma",
        ),
        (
            &["train", "--lr-schedule", "step", "--step-size", "0"],
            "--step-size",
        ),
        (&["train", "--scale", "nan"], "--scale"),
        (&["train", "--margins", "inf"], "--margins"),
        (
            &["train", "--adaptive-margins", "--power", "nan"],
            "--power",
        ),
        (&["train", "--num-subcenters", "0"], "--num-subcenters"),
        (&["train", "--num-classes", "0"], "--num-classes"),
        (
            &["eval", "--checkpoint", "c.safetensors", "--scale", "inf"],
            "--scale",
        ),
    ];
    for (args, flag) in cases {
        let se = fails(&dir, args, 2);
        assert!(se.contains(&format!("for '{flag}")), "{args:?}: {se}");
        let first = se.lines().next().unwrap();
        assert!(
            !first.contains('`'),
            "{args:?} shows an internal name: {se}"
        );
    }
    assert!(dir.files().is_empty());
}

#[test]
fn predict_prints_scores_to_seven_significant_digits() {
    let dir = Dir::new("digits7");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "2",
            "--out",
            "d.safetensors",
        ],
    );
    let (p, _) = ok(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "d.safetensors",
            "--top-k",
            "10",
            "--format",
            "csv",
        ],
    );
    // scores below 0.1 and written positionally (from 1e-4): seven decimals
    // would show them with fewer than seven significant digits
    let (mut small, mut seven) = (0, 0);
    for line in p.lines().skip(1) {
        for cell in line.split(',').skip(2).step_by(2) {
            let v: f64 = cell.parse().unwrap();
            // 0.000123456 → 123456: the digits after the leading zeros
            let digits = cell.trim_start_matches("0.").trim_start_matches('0');
            if !cell.contains('e') && v < 1.0 {
                assert!(digits.len() <= 7, "{cell}");
            }
            if (1e-4..0.1).contains(&v) {
                assert!(!cell.contains('e'), "{cell}");
                small += 1;
                seven += (digits.len() == 7) as usize;
            }
        }
    }
    // trailing zeros are dropped, so about nine in ten show all seven
    assert!(small >= 20 && seven * 10 > small * 7, "{seven} of {small}");
}

/// `--resume` continues the learning-rate schedule of `--epochs` (the whole
/// run's length) from the step the optimiser state records.
#[test]
fn resume_continues_the_learning_rate_schedule() {
    let dir = Dir::new("resume");
    let sched = [
        "--lr-schedule",
        "step",
        "--step-size",
        "1",
        "--gamma",
        "0.5",
        "--lr",
        "0.1",
    ];
    let mut args = vec![
        "train",
        "--quiet",
        "--epochs",
        "2",
        "--out",
        "a.safetensors",
        "--save-optimizer",
    ];
    args.extend(sched);
    ok(&dir, &args);
    let mut args = vec![
        "train",
        "--quiet",
        "--epochs",
        "4",
        "--resume",
        "a.safetensors",
        "--metrics",
        "m.jsonl",
    ];
    args.extend(sched);
    ok(&dir, &args);
    let lines: Vec<Value> = std::fs::read_to_string(dir.path("m.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["event"] == "epoch")
        .collect();
    let epochs: Vec<(u64, f64)> = lines
        .iter()
        .map(|l| (l["epoch"].as_u64().unwrap(), l["lr"].as_f64().unwrap()))
        .collect();
    assert_eq!(epochs, [(3, 0.025), (4, 0.0125)]);
}
