//! `arcface clean`: the paper's recipe as three commands (train K = 3,
//! clean, train K = 1 on what was kept), what each output holds, its
//! errors, and that a failed run writes nothing.

use super::*;
use common::noisy::{noisy_web, NoisySpec};

/// The array of a `.npy` file the program wrote: (descr, shape, data).
fn read_npy(path: &Path) -> (String, String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "data aligned to 64 bytes");
    let h = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    let field = |k: &str| {
        let at = h.find(k).unwrap() + k.len();
        let rest = &h[at..];
        let end = if rest.starts_with('(') {
            rest.find(')').unwrap() + 1
        } else {
            rest[1..].find('\'').unwrap() + 2
        };
        rest[..end].trim_matches('\'').to_string()
    };
    (
        field("'descr': "),
        field("'shape': "),
        bytes[10 + len..].to_vec(),
    )
}

/// A noisy set on disk: x.npy, y.npy (training, 40 % wrong labels) and
/// tx.npy, ty.npy (clean test data). Returns the injected-noise mask.
fn noisy_files(dir: &Dir) -> (Vec<bool>, usize, usize) {
    let set = noisy_web(&NoisySpec {
        classes: 40,
        dim: 48,
        per_class: 60,
        test_per_class: 40,
        closed: 0.2,
        open: 0.2,
        spread: 1.1,
        seed: 3,
    });
    let (n, d) = (set.train_y.len(), set.d);
    dir.write("x.npy", &npy("<f4", &[n, d], &f32s(&set.train_x)));
    dir.write("y.npy", &npy("<i8", &[n], &i64s(&set.train_y)));
    let m = set.test_y.len();
    dir.write("tx.npy", &npy("<f4", &[m, d], &f32s(&set.test_x)));
    dir.write("ty.npy", &npy("<i8", &[m], &i64s(&set.test_y)));
    (set.noise, n, d)
}

fn train_args<'a>(x: &'a str, y: &'a str, k: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--quiet",
        "--features",
        x,
        "--labels",
        y,
        "--num-classes",
        "40",
        "--num-subcenters",
        k,
        "--scale",
        "32",
        "--margins",
        "0.5",
        "--epochs",
        "15",
        "--seed",
        "1",
        "--out",
        out,
    ]
}

fn eval_top1(dir: &Dir, ck: &str) -> f64 {
    let (so, _) = ok(
        dir,
        &[
            "eval",
            "--checkpoint",
            ck,
            "--features",
            "tx.npy",
            "--labels",
            "ty.npy",
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(so.lines().last().unwrap()).unwrap();
    v["top1"].as_f64().unwrap()
}

// Long on purpose: the recipe is one scenario of five program runs, each
// output checked against the others.
#[test]
fn the_recipe_train_k3_clean_train_k1_finds_the_noise_and_beats_both() {
    let dir = Dir::new("clean_recipe");
    let (noise, n, d) = noisy_files(&dir);
    ok(&dir, &train_args("x.npy", "y.npy", "3", "k3.safetensors"));
    ok(&dir, &train_args("x.npy", "y.npy", "1", "k1.safetensors"));
    let (so, _) = ok(
        &dir,
        &[
            "clean",
            "--checkpoint",
            "k3.safetensors",
            "--features",
            "x.npy",
            "--labels",
            "y.npy",
            "--keep",
            "keep.npy",
            "--report",
            "clean.json",
            "--single-centre",
            "dom.safetensors",
            "--write-kept",
            "kept",
        ],
    );
    assert!(so.contains("official") && so.contains("strict"), "{so}");
    // the mask: NumPy bool, one byte per sample
    let (descr, shape, keep) = read_npy(&dir.path("keep.npy"));
    assert_eq!((descr.as_str(), shape), ("|b1", format!("({n},)")));
    assert!(keep.iter().all(|&b| b <= 1));
    // the report agrees with the mask and counts per class
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("clean.json")).unwrap()).unwrap();
    let official: Vec<bool> = r["per_sample"]["keep_official"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    assert_eq!(official, keep.iter().map(|&b| b == 1).collect::<Vec<_>>());
    let kept = official.iter().filter(|&&k| k).count();
    assert_eq!(r["kept_official"].as_u64(), Some(kept as u64));
    assert!(r["kept_strict"].as_u64().unwrap() <= kept as u64);
    let classes = r["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 40);
    let per_class: u64 = classes
        .iter()
        .map(|c| c["kept_official"].as_u64().unwrap())
        .sum();
    assert_eq!(per_class, kept as u64);
    // most of the injected noise is dropped, and little else
    let hit = official
        .iter()
        .zip(&noise)
        .filter(|(&k, &z)| !k && z)
        .count();
    let dropped = n - kept;
    let injected = noise.iter().filter(|&&z| z).count();
    assert!(
        hit as f64 > 0.8 * injected as f64 && hit as f64 > 0.9 * dropped as f64,
        "{hit} of {injected}, {dropped} dropped"
    );
    // the kept samples, as read
    let (descr, shape, xs) = read_npy(&dir.path("kept.features.npy"));
    assert_eq!((descr.as_str(), shape), ("<f4", format!("({kept}, {d})")));
    let (_, _, ys) = read_npy(&dir.path("kept.labels.npy"));
    let x_all = std::fs::read(dir.path("x.npy")).unwrap();
    let y_all = std::fs::read(dir.path("y.npy")).unwrap();
    let (x_all, y_all) = (
        &x_all[x_all.len() - n * d * 4..],
        &y_all[y_all.len() - n * 8..],
    );
    for (j, i) in (0..n).filter(|&i| official[i]).enumerate() {
        assert_eq!(
            &xs[j * d * 4..(j + 1) * d * 4],
            &x_all[i * d * 4..(i + 1) * d * 4]
        );
        assert_eq!(&ys[j * 8..(j + 1) * 8], &y_all[i * 8..(i + 1) * 8]);
    }
    // the K = 1 head of the dominant sub-centres evaluates as a head
    assert!(eval_top1(&dir, "dom.safetensors") > 0.5);
    // retrain K = 1 on what was kept: better than K = 1 and K = 3 on the noise
    ok(
        &dir,
        &train_args(
            "kept.features.npy",
            "kept.labels.npy",
            "1",
            "clean.safetensors",
        ),
    );
    let (k1, k3, cleaned) = (
        eval_top1(&dir, "k1.safetensors"),
        eval_top1(&dir, "k3.safetensors"),
        eval_top1(&dir, "clean.safetensors"),
    );
    assert!(
        cleaned > k1 && cleaned > k3,
        "K=1 {k1}, K=3 {k3}, cleaned {cleaned}"
    );
}

#[test]
fn bad_input_is_an_error_naming_it_and_writes_nothing() {
    let dir = Dir::new("clean_errors");
    let (x, y) = clusters(3, 4, 30, 0.5, 2);
    dir.write("x.npy", &npy("<f4", &[30, 4], &f32s(&x)));
    dir.write("y.npy", &npy("<i8", &[30], &i64s(&y)));
    let (x5, _) = clusters(3, 5, 30, 0.5, 2);
    dir.write("x5.npy", &npy("<f4", &[30, 5], &f32s(&x5)));
    let mut y_out = y.clone();
    y_out[4] = 3;
    dir.write("yout.npy", &npy("<i8", &[30], &i64s(&y_out)));
    let train = |k: &str, out: &str| {
        ok(
            &dir,
            &[
                "train",
                "--quiet",
                "--features",
                "x.npy",
                "--labels",
                "y.npy",
                "--epochs",
                "2",
                "--num-subcenters",
                k,
                "--out",
                out,
            ],
        );
    };
    train("3", "k3.safetensors");
    train("1", "k1.safetensors");
    dir.write("keep.npy", b"earlier");
    let before = dir.snapshot();
    let clean = |ck: &str, xf: &str, yf: &str, extra: &[&str]| {
        let mut a = vec![
            "clean",
            "--checkpoint",
            ck,
            "--features",
            xf,
            "--labels",
            yf,
            "--keep",
            "keep.npy",
            "--report",
            "r.json",
            "--single-centre",
            "s.safetensors",
            "--write-kept",
            "kept",
        ];
        a.extend(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (clean("k1.safetensors", "x.npy", "y.npy", &[]), 1, "K = 1"),
        (
            clean("k3.safetensors", "x.npy", "yout.npy", &[]),
            1,
            "label 3 of sample 4",
        ),
        (
            clean("k3.safetensors", "x5.npy", "y.npy", &[]),
            1,
            "in_channels = 4",
        ),
        (
            clean("k3.safetensors", "x.npy", "y.npy", &["--threshold", "0"]),
            2,
            "--threshold",
        ),
        (
            clean("k3.safetensors", "x.npy", "y.npy", &["--threshold", "180"]),
            2,
            "--threshold",
        ),
        (
            clean("k3.safetensors", "x.npy", "y.npy", &["--threshold", "nan"]),
            2,
            "--threshold",
        ),
        (
            clean("k3.safetensors", "x.npy", "y.npy", &["--rule", "lenient"]),
            2,
            "--rule",
        ),
        (
            clean("k3.safetensors", "x.npy", "y.npy", &[])
                .into_iter()
                .map(|a| if a == "r.json" { "y.npy".into() } else { a })
                .collect(),
            2,
            "--labels",
        ),
    ];
    for (args, code, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let se = fails(&dir, &args, *code);
        assert!(se.contains(says), "{args:?}: {se}");
        assert_eq!(dir.snapshot(), before, "{args:?} wrote something");
    }
    // a failure while committing: every output as it was, no temporary file
    for step in ["write:2", "backup:1", "rename:3"] {
        let args = clean("k3.safetensors", "x.npy", "y.npy", &[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run_env(&dir, &args, &[("ARCFACE_TEST_FAIL_OUTPUT", step)]);
        assert_eq!(o.status.code(), Some(1), "{step}");
        assert_eq!(dir.snapshot(), before, "{step} left files behind");
    }
    // and the same run without the failure writes all five
    let args = clean("k3.safetensors", "x.npy", "y.npy", &[]);
    ok(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    for f in [
        "keep.npy",
        "r.json",
        "s.safetensors",
        "kept.features.npy",
        "kept.labels.npy",
    ] {
        assert!(dir.path(f).is_file(), "{f}");
    }
    assert_ne!(std::fs::read(dir.path("keep.npy")).unwrap(), b"earlier");
}
