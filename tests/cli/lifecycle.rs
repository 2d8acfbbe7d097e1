//! Class lifecycle end to end: `enrol` adds classes from a few embeddings
//! (old rows and metadata kept bit for bit, names recorded), `train
//! --train-classes` fine-tunes only them, `retire` masks classes out of
//! predictions or removes them (with the label mapping), and every bad
//! input is an error that writes nothing.

use super::*;

const D: usize = 16;

/// The weight `(rows, cols, f32 values)` and the arcface metadata (the JSON
/// object under `__metadata__.arcface`) of a checkpoint written in F32, read
/// from the safetensors layout directly.
fn weight_of(path: &Path) -> (usize, usize, Vec<f32>, Value) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let w = &header["head.norm_product.weight"];
    assert_eq!(w["dtype"], "F32");
    let shape: Vec<usize> = w["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let off = w["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    let vals = bytes[off..off + 4 * shape[0] * shape[1]]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let meta = serde_json::from_str(header["__metadata__"]["arcface"].as_str().unwrap()).unwrap();
    (shape[0], shape[1], vals, meta)
}

/// `rows` of a row-major matrix of `D` columns.
fn rows(w: &[f32], rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| w[r * D..(r + 1) * D].to_vec())
        .collect()
}

/// Six noisy clusters: a head trained on classes 0..4 (`h.safetensors`, with
/// its optimiser state), the samples of classes 4 and 5 (`new.npy`, labels
/// 0 and 1 in `new_y.npy`, five each), a held-out set of all six
/// (`test.npy`, `test_y.npy`) and all the training data (`all.npy`, `all_y.npy`).
fn setup(dir: &Dir) {
    let (x, y) = clusters(6, D, 720, 0.35, 21);
    let pick = |keep: &dyn Fn(usize, i64) -> bool| {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| keep(i, y[i])).collect();
        let xs: Vec<f32> = idx
            .iter()
            .flat_map(|&i| x[i * D..(i + 1) * D].to_vec())
            .collect();
        let ys: Vec<i64> = idx.iter().map(|&i| y[i]).collect();
        (xs, ys)
    };
    let save = |name: &str, (xs, ys): (Vec<f32>, Vec<i64>), shift: i64| {
        let n = ys.len();
        dir.write(&format!("{name}.npy"), &npy("<f4", &[n, D], &f32s(&xs)));
        let ys: Vec<i64> = ys.iter().map(|l| l - shift).collect();
        dir.write(&format!("{name}_y.npy"), &npy("<i8", &[n], &i64s(&ys)));
    };
    save("base", pick(&|i, l| i < 480 && l < 4), 0);
    save("all", pick(&|i, _| i < 480), 0);
    save("new", pick(&|i, l| i < 30 && l >= 4), 4);
    save("test", pick(&|i, _| i >= 480), 0);
    ok(
        dir,
        &[
            "train",
            "--quiet",
            "--features",
            "base.npy",
            "--labels",
            "base_y.npy",
            "--epochs",
            "8",
            "--out",
            "h.safetensors",
            "--save-optimizer",
        ],
    );
}

fn eval_top1(dir: &Dir, ck: &str, features: &str, labels: &str) -> f64 {
    let (out, _) = ok(
        dir,
        &[
            "eval",
            "--checkpoint",
            ck,
            "--features",
            features,
            "--labels",
            labels,
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["top1"].as_f64().unwrap()
}

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists.
#[test]
fn enrol_fine_tune_and_retire_keep_what_they_do_not_change() {
    let dir = Dir::new("lifecycle");
    setup(&dir);
    let (out, _) = ok(
        &dir,
        &[
            "enrol",
            "--checkpoint",
            "h.safetensors",
            "--features",
            "new.npy",
            "--labels",
            "new_y.npy",
            "--label-name",
            "four",
            "--label-name",
            "five",
            "--out",
            "h2.safetensors",
            "--save-optimizer",
        ],
    );
    assert!(
        out.contains("enrolled class 4 (\"four\") from 5 embeddings")
            && out.contains("enrolled class 5 (\"five\") from 5 embeddings")
            && out.contains("head: 6 classes × K = 1, D = 16 → h2.safetensors"),
        "{out}"
    );
    let (r1, _, w1, _) = weight_of(&dir.path("h.safetensors"));
    let (r2, _, w2, meta2) = weight_of(&dir.path("h2.safetensors"));
    assert_eq!((r1, r2), (4, 6));
    assert_eq!(&w2[..4 * D], &w1[..], "old rows are unchanged");
    assert_eq!(meta2["extra"]["class_names"], r#"{"4":"four","5":"five"}"#);
    assert!(dir.path("h2.optim.safetensors").is_file());
    // imprinted from five samples each, the new classes are recognised
    let top1 = eval_top1(&dir, "h2.safetensors", "test.npy", "test_y.npy");
    assert!(top1 > 0.9, "test top-1 after enrolment {top1}");

    // fine-tuning only the new classes leaves the old rows bit for bit
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--init",
            "h2.safetensors",
            "--train-classes",
            "4,5",
            "--features",
            "all.npy",
            "--labels",
            "all_y.npy",
            "--epochs",
            "2",
            "--out",
            "h3.safetensors",
        ],
    );
    let (_, _, w3, _) = weight_of(&dir.path("h3.safetensors"));
    assert_eq!(&w3[..4 * D], &w2[..4 * D]);
    assert_ne!(&w3[4 * D..], &w2[4 * D..]);

    // masking: class 1 is never predicted, its row stays
    let (out, _) = ok(
        &dir,
        &[
            "retire",
            "--checkpoint",
            "h2.safetensors",
            "--classes",
            "1",
            "--out",
            "r.safetensors",
        ],
    );
    assert!(
        out.contains("retired classes 1") && out.contains("(1 retired)"),
        "{out}"
    );
    let (_, _, wr, meta) = weight_of(&dir.path("r.safetensors"));
    assert_eq!(wr, w2);
    assert_eq!(meta["retired"], serde_json::json!([1]));
    let (p, _) = ok(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "r.safetensors",
            "--features",
            "test.npy",
            "--top-k",
            "3",
        ],
    );
    let preds: Value = serde_json::from_str(&p).unwrap();
    for row in preds.as_array().unwrap() {
        assert!(
            !row["labels"].as_array().unwrap().contains(&Value::from(1)),
            "{row}"
        );
    }
    // the retired mask travels with the checkpoint: retiring again is refused
    let e = fails(
        &dir,
        &[
            "retire",
            "--checkpoint",
            "r.safetensors",
            "--classes",
            "1",
            "--out",
            "x.safetensors",
        ],
        2,
    );
    assert!(e.contains("--classes") && e.contains("class 1"), "{e}");

    // removal: rows compacted, names and optimiser state follow, the mapping written
    let (out, _) = ok(
        &dir,
        &[
            "retire",
            "--checkpoint",
            "h2.safetensors",
            "--classes",
            "1,4",
            "--remove",
            "--mapping",
            "map.json",
            "--out",
            "rm.safetensors",
            "--save-optimizer",
        ],
    );
    assert!(out.contains("renumbered: 2–3 → 1–2, 5 → 3"), "{out}");
    let map: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("map.json")).unwrap()).unwrap();
    assert_eq!(map, serde_json::json!([0, null, 1, 2, null, 3]));
    let (rr, _, wrm, meta) = weight_of(&dir.path("rm.safetensors"));
    assert_eq!(rr, 4);
    assert_eq!(wrm, rows(&w2, &[0, 2, 3, 5]));
    assert_eq!(meta["extra"]["class_names"], r#"{"3":"five"}"#);
    assert_eq!(meta["head"]["num_classes"], 4);
    assert!(dir.path("rm.optim.safetensors").is_file());
    // the compacted head and its state resume training (8 epochs of 3 steps
    // were saved: 24 epochs of new.npy's one step)
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--resume",
            "rm.safetensors",
            "--features",
            "new.npy",
            "--labels",
            "new_y.npy",
            "--num-classes",
            "4",
            "--epochs",
            "26",
            "--out",
            "rm2.safetensors",
        ],
    );
}

#[test]
fn bad_lifecycle_inputs_are_typed_errors_that_write_nothing() {
    let dir = Dir::new("lifecycle_bad");
    setup(&dir);
    let (x, _) = clusters(6, D, 12, 0.35, 21);
    let mut nan = x.clone();
    nan[3] = f32::NAN;
    dir.write("nan.npy", &npy("<f4", &[12, D], &f32s(&nan)));
    let mut zero = x.clone();
    zero[D..2 * D].fill(0.0);
    dir.write("zero.npy", &npy("<f4", &[12, D], &f32s(&zero)));
    dir.write("wide.npy", &npy("<f4", &[6, 2 * D], &f32s(&x)));
    dir.write(
        "gap_y.npy",
        &npy("<i8", &[12], &i64s(&[0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2])),
    );
    dir.write("x12.npy", &npy("<f4", &[12, D], &f32s(&x)));
    let enrol = |features: &str, more: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "enrol",
            "--checkpoint",
            "h.safetensors",
            "--features",
            features,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(more.iter().map(|s| s.to_string()));
        v.extend(["--out", "o.safetensors", "--save-optimizer"].map(String::from));
        v
    };
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (enrol("nan.npy", &[]), 1, "nan.npy"),
        (
            enrol("zero.npy", &[]),
            1,
            "zero.npy: embedding 1 has zero norm",
        ),
        (
            enrol("wide.npy", &[]),
            1,
            "wide.npy: has 32 features per sample",
        ),
        (enrol("x12.npy", &["--labels", "gap_y.npy"]), 1, "gap_y.npy"),
        (
            enrol("x12.npy", &["--label-name", "a", "--label-name", "b"]),
            2,
            "2 --label-name given for 1 new class",
        ),
        (enrol("x12.npy", &["--margin", "nan"]), 2, "--margin"),
        (
            [
                "retire",
                "--checkpoint",
                "h.safetensors",
                "--classes",
                "9",
                "--out",
                "o.safetensors",
            ]
            .map(String::from)
            .to_vec(),
            2,
            "invalid value for '--classes <C,…>'",
        ),
        (
            [
                "retire",
                "--checkpoint",
                "h.safetensors",
                "--classes",
                "0,1,2,3",
                "--remove",
                "--out",
                "o.safetensors",
            ]
            .map(String::from)
            .to_vec(),
            2,
            "--classes",
        ),
        (
            [
                "train",
                "--features",
                "all.npy",
                "--labels",
                "all_y.npy",
                "--train-classes",
                "1",
                "--out",
                "o.safetensors",
            ]
            .map(String::from)
            .to_vec(),
            2,
            "(--init or --resume)",
        ),
        (
            [
                "train",
                "--init",
                "h.safetensors",
                "--features",
                "base.npy",
                "--labels",
                "base_y.npy",
                "--train-classes",
                "7",
                "--out",
                "o.safetensors",
            ]
            .map(String::from)
            .to_vec(),
            2,
            "--train-classes",
        ),
    ];
    for (args, code, says) in &cases {
        let before = dir.snapshot();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let e = fails(&dir, &args, *code);
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(dir.snapshot(), before, "{args:?} changed the directory");
    }
    // a head whose margins differ gives a new class none unless asked
    dir.write("m.txt", b"0.1\n0.2\n0.3\n0.4\n");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            "base.npy",
            "--labels",
            "base_y.npy",
            "--margins",
            "m.txt",
            "--epochs",
            "1",
            "--out",
            "pm.safetensors",
        ],
    );
    let before = dir.snapshot();
    let e = fails(
        &dir,
        &[
            "enrol",
            "--checkpoint",
            "pm.safetensors",
            "--features",
            "x12.npy",
            "--out",
            "o.safetensors",
        ],
        2,
    );
    assert!(e.contains("invalid value for '--margin <M>'"), "{e}");
    assert_eq!(dir.snapshot(), before);
    ok(
        &dir,
        &[
            "enrol",
            "--checkpoint",
            "pm.safetensors",
            "--features",
            "x12.npy",
            "--margin",
            "0.25",
            "--out",
            "o.safetensors",
        ],
    );
    let (_, _, _, meta) = weight_of(&dir.path("o.safetensors"));
    assert_eq!(
        meta["head"]["margins"],
        serde_json::json!([0.1, 0.2, 0.3, 0.4, 0.25])
    );
    std::fs::remove_file(dir.path("o.safetensors")).unwrap();
    // --save-optimizer needs the state beside --checkpoint
    let before = dir.snapshot();
    let e = fails(
        &dir,
        &[
            "enrol",
            "--checkpoint",
            "pm.safetensors",
            "--features",
            "x12.npy",
            "--margin",
            "0.25",
            "--out",
            "o.safetensors",
            "--save-optimizer",
        ],
        1,
    );
    assert!(e.contains("pm.optim.safetensors"), "{e}");
    assert_eq!(dir.snapshot(), before);

    // a failure while the outputs are committed leaves nothing behind either
    for step in ["write:1", "write:2", "rename:2"] {
        let before = dir.snapshot();
        let o = run_env(
            &dir,
            &enrol("new.npy", &["--labels", "new_y.npy"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &[("ARCFACE_TEST_FAIL_OUTPUT", step)],
        );
        assert_eq!(o.status.code(), Some(1), "{step}");
        assert_eq!(dir.snapshot(), before, "{step} changed the directory");
    }
}
