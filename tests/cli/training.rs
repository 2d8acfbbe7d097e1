//! Training end to end: the embedded digits reach the accuracy bar,
//! checkpoints round-trip through `eval` and `predict`, runs are
//! reproducible, files from NumPy and CSV are read, the synthetic set runs.

use super::*;

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

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
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

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
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
    // resume from the saved optimiser state (the same data and split; --epochs
    // counts the whole run, 5 of which are done), and fine-tune from a checkpoint
    ok(
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
            "7",
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
fn sample_rate_trains_on_a_sample_of_the_classes_and_refuses_bad_rates() {
    let dir = Dir::new("sample_rate");
    let (so, _) = ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--data",
            "synthetic",
            "--classes",
            "60",
            "--synthetic-dim",
            "16",
            "--epochs",
            "2",
            "--sample-rate",
            "0.25",
            "--metrics",
            "m.jsonl",
            "--out",
            "s.safetensors",
        ],
    );
    assert!(so.contains("synthetic"), "{so}");
    assert_eq!(summary(&dir.path("m.jsonl"))["test_samples"], 600);
    for bad in ["0", "1.5", "NaN", "-0.1"] {
        let err = fails(
            &dir,
            &[
                "train",
                "--data",
                "synthetic",
                "--sample-rate",
                bad,
                "--out",
                "t.safetensors",
            ],
            2,
        );
        assert!(
            err.contains("sample_rate") || err.contains("sample-rate"),
            "{bad}: {err}"
        );
    }
}

/// `--resume` with another `--sample-rate` or learning-rate schedule than
/// the saved run's is a usage error naming it, and writes nothing.
#[test]
fn resume_refuses_another_sample_rate_or_schedule() {
    let dir = Dir::new("resume_rate");
    let base = [
        "train",
        "--quiet",
        "--data",
        "synthetic",
        "--classes",
        "40",
        "--synthetic-dim",
        "8",
    ];
    let mut first = base.to_vec();
    first.extend([
        "--epochs",
        "1",
        "--sample-rate",
        "0.25",
        "--out",
        "a.safetensors",
        "--save-optimizer",
    ]);
    ok(&dir, &first);
    let before = (
        std::fs::read(dir.path("a.safetensors")).unwrap(),
        std::fs::read(dir.path("a.optim.safetensors")).unwrap(),
    );
    let resume = |extra: &[&'static str]| {
        let mut args = base.to_vec();
        args.extend(["--resume", "a.safetensors", "--out", "b.safetensors"]);
        args.extend(extra);
        args
    };
    for (extra, named) in [
        (
            &["--epochs", "2", "--sample-rate", "0.5"][..],
            "--sample-rate",
        ),
        (&["--epochs", "2"][..], "--sample-rate"),
        (
            &["--epochs", "2", "--sample-rate", "0.25", "--lr", "0.2"][..],
            "--lr",
        ),
        (
            &[
                "--epochs",
                "2",
                "--sample-rate",
                "0.25",
                "--lr-schedule",
                "constant",
            ][..],
            "--lr-schedule",
        ),
    ] {
        let err = fails(&dir, &resume(extra), 2);
        assert!(
            err.contains(named) && err.contains("saved run"),
            "{extra:?}: {err}"
        );
        assert!(!dir.path("b.safetensors").exists());
    }
    let after = (
        std::fs::read(dir.path("a.safetensors")).unwrap(),
        std::fs::read(dir.path("a.optim.safetensors")).unwrap(),
    );
    assert!(before == after);
    // the same settings continue
    ok(
        &dir,
        &resume(&["--epochs", "2", "--sample-rate", "0.25"][..]),
    );
}
