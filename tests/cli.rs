//! The `arcface` program end to end: the embedded digits set reaches the
//! accuracy bar, checkpoints round-trip through `eval` and `predict`, files
//! from NumPy/PyTorch are read, and bad files give clear errors with nothing
//! written.

mod common;

use common::data::clusters;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_arcface");

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("arcface_cli_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    fn s(&self, f: &str) -> String {
        self.path(f).to_str().unwrap().to_string()
    }
    fn files(&self) -> BTreeSet<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }
    fn write(&self, f: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(f), bytes).unwrap();
        self.s(f)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The program, behind the target's runner when cargo uses one (for example
/// `qemu-aarch64-static` in scripts/test-aarch64.sh, which exports
/// `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER`): the test binary inherits
/// that variable, and the program it starts needs the same runner.
fn command() -> Command {
    let arch = std::env::consts::ARCH.to_ascii_uppercase();
    let runner = std::env::vars()
        .find(|(k, _)| k.starts_with(&format!("CARGO_TARGET_{arch}_")) && k.ends_with("_RUNNER"));
    match runner {
        Some((_, r)) if !r.trim().is_empty() => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(BIN);
            c
        }
        _ => Command::new(BIN),
    }
}

fn run(dir: &Dir, args: &[&str]) -> Output {
    command()
        .args(args)
        .current_dir(&dir.0)
        .output()
        .expect("runs")
}

fn ok(dir: &Dir, args: &[&str]) -> (String, String) {
    let o = run(dir, args);
    let (so, se) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "arcface {args:?} failed:\n{se}\n{so}");
    (so, se)
}

/// Runs, expects exit status `code`, returns stderr.
fn fails(dir: &Dir, args: &[&str], code: i32) -> String {
    let o = run(dir, args);
    let se = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "arcface {args:?}: {se}");
    assert!(se.starts_with("error: "), "{se}");
    assert!(!se.contains("panicked"), "{se}");
    se
}

fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    npy_with(descr, "False", shape, data)
}

fn npy_with(descr: &str, fortran: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_s}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn summary(metrics: &Path) -> Value {
    let text = std::fs::read_to_string(metrics).unwrap();
    let last = text.lines().last().unwrap();
    let v: Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["event"], "summary");
    v
}

#[test]
fn default_training_on_the_embedded_digits_reaches_the_bar() {
    let dir = Dir::new("digits");
    let (stdout, stderr) = ok(
        &dir,
        &[
            "train",
            "--out",
            "d.safetensors",
            "--metrics",
            "m.jsonl",
            "--curves",
            "c.svg",
        ],
    );
    let s = summary(&dir.path("m.jsonl"));
    let top1 = s["test_top1"].as_f64().unwrap();
    assert!(top1 >= 0.95, "digits test top-1 {top1}");
    assert!(s["test_top5"].as_f64().unwrap() >= 0.99);
    assert_eq!(s["test_samples"], 359);
    assert_eq!(s["train_samples"], 1438);
    assert_eq!(s["data"], "digits");
    // one JSON line per epoch, then the summary
    let lines: Vec<Value> = std::fs::read_to_string(dir.path("m.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 21);
    assert!(lines[..20]
        .iter()
        .enumerate()
        .all(|(i, l)| l["epoch"] == i + 1 && l["val_top1"].is_number()));
    assert!(lines[19]["train_loss"].as_f64().unwrap() < lines[0]["train_loss"].as_f64().unwrap());
    // the summary table, the progress lines, the figure
    assert!(
        stdout.contains("top-1 accuracy")
            && stdout.contains("peak memory")
            && stdout.contains("embeddings/s"),
        "{stdout}"
    );
    assert!(stderr.contains("epoch 20/20"), "{stderr}");
    let svg = std::fs::read_to_string(dir.path("c.svg")).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.trim_end().ends_with("</svg>")
            && svg.matches("<polyline").count() == 5
    );
    assert_eq!(
        dir.files(),
        BTreeSet::from(["c.svg".into(), "d.safetensors".into(), "m.jsonl".into()])
    );
}

#[test]
fn checkpoint_round_trip_gives_identical_numbers_and_predictions() {
    let dir = Dir::new("roundtrip");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "6",
            "--num-subcenters",
            "2",
            "--out",
            "d.safetensors",
            "--metrics",
            "m.jsonl",
        ],
    );
    let s = summary(&dir.path("m.jsonl"));
    // eval reloads the checkpoint (and its standardisation) and finds the digits test split
    let (out, _) = ok(
        &dir,
        &["eval", "--checkpoint", "d.safetensors", "--format", "json"],
    );
    let e: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(e["loss"], s["test_loss"]);
    assert_eq!(e["top1"], s["test_top1"]);
    assert_eq!(e["top5"], s["test_top5"]);
    assert_eq!(e["samples"], 359);
    // f64 arithmetic from the same checkpoint agrees to rounding
    let (out64, _) = ok(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "d.safetensors",
            "--format",
            "json",
            "--dtype",
            "f64",
        ],
    );
    let e64: Value = serde_json::from_str(out64.trim()).unwrap();
    assert!((e64["loss"].as_f64().unwrap() - e["loss"].as_f64().unwrap()).abs() < 1e-3);
    // predictions: deterministic, and their top-1 agrees with eval's accuracy
    let (p1, _) = ok(
        &dir,
        &["predict", "--checkpoint", "d.safetensors", "--top-k", "3"],
    );
    let (p2, _) = ok(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "d.safetensors",
            "--top-k",
            "3",
            "--threads",
            "1",
        ],
    );
    assert_eq!(p1, p2);
    let preds: Value = serde_json::from_str(&p1).unwrap();
    let preds = preds.as_array().unwrap();
    assert_eq!(preds.len(), 359);
    for p in preds {
        let scores: Vec<f64> = p["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), 3);
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1])
                && scores.iter().all(|s| (0.0..=1.0).contains(s))
        );
    }
    ok(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "d.safetensors",
            "--format",
            "csv",
            "--top-k",
            "2",
            "--output",
            "p.csv",
        ],
    );
    let csv = std::fs::read_to_string(dir.path("p.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("sample,label_1,score_1,label_2,score_2"));
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[0], "0");
    assert_eq!(first[1], preds[0]["labels"][0].to_string());
    assert_eq!(csv.lines().count(), 360);
}

#[test]
fn same_seed_and_threads_give_identical_checkpoints() {
    let dir = Dir::new("repro");
    for t in ["1", "2"] {
        ok(
            &dir,
            &[
                "train",
                "--quiet",
                "--epochs",
                "3",
                "--threads",
                t,
                "--out",
                "a.safetensors",
            ],
        );
        ok(
            &dir,
            &[
                "train",
                "--quiet",
                "--epochs",
                "3",
                "--threads",
                t,
                "--out",
                "b.safetensors",
            ],
        );
        assert_eq!(
            std::fs::read(dir.path("a.safetensors")).unwrap(),
            std::fs::read(dir.path("b.safetensors")).unwrap()
        );
    }
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "3",
            "--seed",
            "9",
            "--out",
            "c.safetensors",
        ],
    );
    assert_ne!(
        std::fs::read(dir.path("a.safetensors")).unwrap(),
        std::fs::read(dir.path("c.safetensors")).unwrap()
    );
}

#[test]
fn trains_on_npy_and_csv_files() {
    let dir = Dir::new("files");
    let (x, y) = clusters(6, 10, 300, 0.5, 1);
    let xf = dir.write("x.npy", &npy("<f4", &[300, 10], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[300], &i64s(&y)));
    let (so, _) = ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--val-fraction",
            "0.2",
            "--epochs",
            "5",
            "--scale",
            "16",
            "--metrics",
            "m.jsonl",
            "--out",
            "h.safetensors",
            "--save-optimizer",
        ],
    );
    assert!(so.contains("files"));
    let s = summary(&dir.path("m.jsonl"));
    assert!(s["test_top1"].as_f64().unwrap() > 0.9, "{s}");
    assert_eq!(s["test_samples"], 60);
    assert!(dir.path("h.optim.safetensors").exists());

    // float16 features, int32 labels, (N, 1) label shape
    let h16: Vec<u8> = x
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    let x16 = dir.write("x16.npy", &npy("<f2", &[300, 10], &h16));
    let y32: Vec<u8> = y.iter().flat_map(|v| (*v as i32).to_le_bytes()).collect();
    let y32 = dir.write("y32.npy", &npy("<i4", &[300, 1], &y32));
    let (out, _) = ok(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "h.safetensors",
            "--features",
            &x16,
            "--labels",
            &y32,
            "--format",
            "json",
        ],
    );
    let e: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(e["top1"].as_f64().unwrap() > 0.9);

    // CSV with the label in the last column, and a header line
    let mut csv = String::from(
        &(0..10)
            .map(|j| format!("f{j}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    csv.push_str(",label\n");
    for (row, l) in x.chunks(10).zip(&y) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        csv.push_str(&format!("{},{l}\n", cells.join(",")));
    }
    let cf = dir.write("data.csv", csv.as_bytes());
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &cf,
            "--epochs",
            "2",
            "--optimizer",
            "AdamW",
            "--lr",
            "0.01",
            "--num-subcenters",
            "3",
            "--adaptive-margins",
        ],
    );
    // resume from the saved optimiser state, and fine-tune from a checkpoint
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "2",
            "--resume",
            "h.safetensors",
            "--out",
            "h2.safetensors",
        ],
    );
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "2",
            "--init",
            "h.safetensors",
            "--lr",
            "0.01",
        ],
    );
    // predict from a .npy without labels
    let (p, _) = ok(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "h2.safetensors",
            "--features",
            &xf,
            "--format",
            "csv",
            "--top-k",
            "1",
        ],
    );
    assert_eq!(p.lines().count(), 301);
}

#[test]
fn synthetic_data_set_runs() {
    let dir = Dir::new("synthetic");
    let (so, _) = ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--data",
            "synthetic",
            "--synthetic-classes",
            "40",
            "--synthetic-dim",
            "32",
            "--epochs",
            "3",
            "--num-subcenters",
            "3",
            "--adaptive-margins",
            "--metrics",
            "m.jsonl",
            "--out",
            "s.safetensors",
        ],
    );
    assert!(
        so.contains("synthetic") && so.contains("adaptive margins"),
        "{so}"
    );
    let s = summary(&dir.path("m.jsonl"));
    assert_eq!(s["test_samples"], 400);
    // eval finds the same synthetic test split from the checkpoint
    let (out, _) = ok(
        &dir,
        &["eval", "--checkpoint", "s.safetensors", "--format", "json"],
    );
    let e: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(e["top1"], s["test_top1"]);
}

#[test]
fn loads_a_plain_pytorch_export() {
    let dir = Dir::new("torch");
    let (c, k, d) = (4, 2, 6);
    let w: Vec<f32> = (0..c * k * d)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let bf: Vec<u8> = w
        .iter()
        .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
        .collect();
    let mut h = format!(
        "{{\"__metadata__\":{{\"format\":\"pt\"}},\"head.norm_product.weight\":{{\"dtype\":\"BF16\",\"shape\":[{},{d}],\"data_offsets\":[0,{}]}}}}",
        c * k,
        bf.len()
    )
    .into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(bf);
    dir.write("torch.safetensors", &file);
    let (x, y) = clusters(c, d, 20, 0.5, 3);
    let xf = dir.write("x.npy", &npy("<f4", &[20, d], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[20], &i64s(&y)));
    ok(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "2",
            "--scale",
            "30",
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
    );
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "3",
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
        1,
    );
    assert!(se.contains("not a multiple of --num-subcenters 3"), "{se}");
    // fine-tune it: the configuration comes from the flags
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--init",
            "torch.safetensors",
            "--num-subcenters",
            "2",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "1",
            "--out",
            "ft.safetensors",
        ],
    );
    let se = fails(
        &dir,
        &[
            "train",
            "--quiet",
            "--init",
            "torch.safetensors",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "1",
        ],
        1,
    );
    assert!(se.contains("shape (8, 6)"), "{se}");
}

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

#[test]
fn eval_and_predict_take_a_margins_file_as_train_does() {
    let dir = Dir::new("marginsfile");
    let (c, d) = (4, 6);
    let w: Vec<f32> = (0..c * d)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let mut h = format!(
        "{{\"head.norm_product.weight\":{{\"dtype\":\"F32\",\"shape\":[{c},{d}],\"data_offsets\":[0,{}]}}}}",
        4 * w.len()
    )
    .into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(f32s(&w));
    dir.write("torch.safetensors", &file);
    let (x, y) = clusters(c, d, 20, 0.5, 5);
    let xf = dir.write("x.npy", &npy("<f4", &[20, d], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[20], &i64s(&y)));
    let same = dir.write("same.txt", b"0.3\n0.3\n0.3\n0.3\n");
    let eval = |margins: &str| {
        let args = [
            "eval",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "1",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--format",
            "json",
            "--margins",
            margins,
        ];
        let (out, _) = ok(&dir, &args);
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        v["loss"].as_f64().unwrap()
    };
    // a file of equal margins is the same head as the number
    assert_eq!(eval(&same), eval("0.3"));
    let varied = dir.write("varied.txt", b"0.1\n0.5\n0.2\n0.4\n");
    assert_ne!(eval(&varied), eval("0.3"));
    let predict = |margins: &str| {
        let args = [
            "predict",
            "--checkpoint",
            "torch.safetensors",
            "--num-classes",
            "4",
            "--features",
            &xf,
            "--format",
            "csv",
            "--margins",
            margins,
        ];
        ok(&dir, &args).0
    };
    assert_eq!(predict(&same), predict("0.3"));
    // one margin per class, or an error naming the file
    let short = dir.write("short.txt", b"0.3\n0.3\n");
    let se = fails(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "1",
            "--features",
            &xf,
            "--margins",
            &short,
        ],
        1,
    );
    assert!(
        se.contains("short.txt: ") && se.contains("expected one per class (4)"),
        "{se}"
    );
    // a checkpoint with its own configuration refuses the flag
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "1",
            "--margins",
            &varied,
            "--out",
            "h.safetensors",
        ],
    );
    assert_eq!(
        head_meta(&dir.path("h.safetensors"))["head"]["margins"][1],
        0.5
    );
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "h.safetensors",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--margins",
            &same,
        ],
        2,
    );
    assert!(se.contains("carries its own head configuration"), "{se}");
}

fn head_meta(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let h: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    serde_json::from_str(h["__metadata__"]["arcface"].as_str().unwrap()).unwrap()
}

#[test]
fn fine_tuning_keeps_the_checkpoint_configuration() {
    let dir = Dir::new("finetune");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "2",
            "--scale",
            "30",
            "--num-subcenters",
            "2",
            "--out",
            "a.safetensors",
        ],
    );
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--init",
            "a.safetensors",
            "--out",
            "b.safetensors",
        ],
    );
    let (a, b) = (
        head_meta(&dir.path("a.safetensors")),
        head_meta(&dir.path("b.safetensors")),
    );
    assert_eq!(b["head"]["scale"], 30.0);
    assert_eq!(b["head"]["num_subcenters"], 2);
    assert_eq!(a["head"], b["head"]);
    assert_eq!(b["extra"]["data"], "digits");
    // a flag still changes it
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--init",
            "a.safetensors",
            "--margins",
            "0.3",
            "--out",
            "c.safetensors",
        ],
    );
    assert_eq!(
        head_meta(&dir.path("c.safetensors"))["head"]["margins"][0],
        0.3
    );
    // --resume keeps everything and refuses head flags
    let se = fails(
        &dir,
        &["train", "--resume", "a.safetensors", "--scale", "10"],
        2,
    );
    assert!(
        se.contains("'--resume <CKPT>' cannot be used with") && se.contains("--scale <S>"),
        "{se}"
    );
    let se = fails(&dir, &["train", "--resume", "a.safetensors"], 1);
    assert!(se.contains("a.optim.safetensors"), "{se}");
}
