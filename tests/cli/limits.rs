//! Size and memory: a head or run that would not fit is an error saying
//! how much it needs (never an abort), nothing in a checkpoint makes the
//! program build data it was not asked for, and memory follows what the
//! user chose (`--batch-size`, the size of the input).

use super::*;
use std::time::{Duration, Instant};

#[test]
fn a_head_too_large_for_the_machine_is_an_error_saying_how_much_it_needs() {
    let dir = Dir::new("huge");
    for flags in [
        ["--num-classes", "1000000000"],
        ["--num-subcenters", "1000000000"],
        ["--epochs", "100000000000"],
    ] {
        let t = Instant::now();
        let o = run(&dir, &["train", "--quiet", flags[0], flags[1]]);
        let se = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{flags:?}: {se}");
        assert!(t.elapsed() < Duration::from_secs(10), "{flags:?} took long");
        assert!(
            se.starts_with("error: training a head of ")
                && se.contains("needs about")
                && se.contains("TiB")
                && se.contains("--batch-size"),
            "{flags:?}: {se}"
        );
        assert!(!se.contains("memory allocation"), "{se}");
    }
    // f64 names the cheaper precision
    let se = fails(
        &dir,
        &[
            "train",
            "--quiet",
            "--num-classes",
            "1000000000",
            "--dtype",
            "f64",
        ],
        1,
    );
    assert!(se.contains("--dtype f32 would halve it"), "{se}");
    // a synthetic set is sized before it is generated
    let t = Instant::now();
    let o = run(
        &dir,
        &[
            "train",
            "--data",
            "synthetic",
            "--synthetic-classes",
            "100000",
            "--synthetic-dim",
            "4096",
            "--dtype",
            "f64",
        ],
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    let se = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{se}");
    assert!(se.contains("needs about"), "{se}");
    assert!(dir.files().is_empty());
}

/// Rewrites the `data` entry of a checkpoint's arcface metadata.
fn retag(path: &Path, tag: &str) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = header["__metadata__"]["arcface"].as_str().unwrap();
    let mut meta: Value = serde_json::from_str(meta).unwrap();
    meta["extra"]["data"] = Value::from(tag);
    header["__metadata__"]["arcface"] = Value::from(meta.to_string());
    let mut h = header.to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_checkpoint_never_makes_eval_build_a_data_set_that_does_not_fit_its_head() {
    let dir = Dir::new("implied");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--out",
            "h.safetensors",
        ],
    );
    // the largest synthetic set: refused for its size, before anything is generated
    retag(
        &dir.path("h.safetensors"),
        "synthetic:classes=100000,dim=4096,seed=0",
    );
    for cmd in ["eval", "predict"] {
        let t = Instant::now();
        let se = fails(&dir, &[cmd, "--checkpoint", "h.safetensors"], 1);
        assert!(t.elapsed() < Duration::from_secs(5), "{cmd} generated data");
        assert!(
            se.contains("h.safetensors: names the data set synthetic:classes=100000,dim=4096")
                && se.contains("to generate"),
            "{se}"
        );
    }
    // a small set of another shape than the head's (D = 64, C = 10)
    retag(
        &dir.path("h.safetensors"),
        "synthetic:classes=10,dim=32,seed=0",
    );
    let se = fails(&dir, &["eval", "--checkpoint", "h.safetensors"], 1);
    assert!(
        se.contains("(C = 10, D = 32) but holds a head of C = 10, D = 64"),
        "{se}"
    );
    // the data flags still choose any set
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "h.safetensors",
            "--data",
            "synthetic",
            "--synthetic-dim",
            "8",
        ],
        1,
    );
    assert!(se.contains("has 8 feature columns"), "{se}");
}

#[test]
fn the_final_evaluation_of_train_runs_in_batches_of_batch_size() {
    let dir = Dir::new("evalbatch");
    // 100 000 classes: an evaluation batch of 1024 would hold 1024 × 100 000
    // products and logits (800 MB); batches of 64 hold 50 MB
    let (n, d, c) = (1100, 8, 100_000);
    let (x, y) = clusters(8, d, n, 0.5, 9);
    let xf = dir.write("x.npy", &npy("<f4", &[n, d], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[n], &i64s(&y)));
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--num-classes",
            &c.to_string(),
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--no-train-accuracy",
            "--metrics",
            "m.jsonl",
        ],
    );
    if let Some(peak) = own_peak(&dir.path("m.jsonl")) {
        assert!(peak < 400 << 20, "peak {} MiB", peak >> 20);
    }
}

#[test]
fn an_f32_npy_file_is_read_without_a_second_copy() {
    let dir = Dir::new("npycopy");
    // 64 MiB of features; two copies would peak above 128 MiB
    let (n, d) = (131_072, 128);
    let x: Vec<f32> = (0..n * d)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let y: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
    let xf = dir.write("x.npy", &npy("<f4", &[n, d], &f32s(&x)));
    drop(x);
    let yf = dir.write("y.npy", &npy("<i8", &[n], &i64s(&y)));
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
            "--batch-size",
            "256",
            "--no-train-accuracy",
            "--metrics",
            "m.jsonl",
        ],
    );
    if let Some(peak) = own_peak(&dir.path("m.jsonl")) {
        assert!(peak < 100 << 20, "peak {} MiB", peak >> 20);
    }
}
