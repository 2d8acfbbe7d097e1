//! What a run writes: never over one of its inputs (under any name), never
//! two outputs to one file, every output checked before any work, and all
//! of them committed together, or none, whatever step fails.

use super::*;
use std::time::{Duration, Instant};

/// Digits training that would run for hours if it started: a check that
/// answers at once proves it came before any work.
const FOREVER: [&str; 3] = ["--quiet", "--epochs", "1000000"];

/// Runs, expects a usage error (exit 2) within seconds (a run still going
/// then is killed), returns stderr.
fn refused_at_once(dir: &Dir, args: &[&str]) -> String {
    let mut child = command()
        .args(args)
        .current_dir(&dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{args:?} was not refused: it started the run");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let se = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {se}");
    assert!(
        se.starts_with("error: ") && !se.contains("panicked"),
        "{se}"
    );
    se
}

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
#[test]
fn an_output_that_is_an_input_under_any_name_is_a_usage_error_naming_both_flags() {
    let dir = Dir::new("clash");
    let (x, y) = clusters(3, 4, 12, 0.5, 4);
    let xf = dir.write("x.npy", &npy("<f4", &[12, 4], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[12], &i64s(&y)));
    dir.write("vx.npy", &npy("<f4", &[12, 4], &f32s(&x)));
    dir.write("m.txt", b"0.3\n0.3\n0.3\n");
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
            "--out",
            "h.safetensors",
        ],
    );
    std::fs::hard_link(dir.path("y.npy"), dir.path("hard.npy")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path("vx.npy"), dir.path("link.svg")).unwrap();
    let before = dir.snapshot();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--features", "x.npy", "--labels", "y.npy"];
        args.extend(FOREVER);
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let mut cases: Vec<(Vec<String>, [&str; 2])> = vec![
        (train(&["--out", "./x.npy"]), ["--out", "--features"]),
        (train(&["--metrics", "y.npy"]), ["--metrics", "--labels"]),
        (
            train(&["--curves", &dir.s("x.npy")]),
            ["--curves", "--features"],
        ),
        (train(&["--out", "hard.npy"]), ["--out", "--labels"]),
        (
            train(&["--margins", "m.txt", "--curves", "m.txt"]),
            ["--curves", "--margins"],
        ),
        (
            train(&["--init", "h.safetensors", "--out", "h.safetensors"]),
            ["--out", "--init"],
        ),
        (
            train(&["--out", "o", "--metrics", "o"]),
            ["--out", "--metrics"],
        ),
        (
            train(&[
                "--out",
                "o.safetensors",
                "--save-optimizer",
                "--curves",
                "o.optim.safetensors",
            ]),
            ["--save-optimizer", "--curves"],
        ),
        (
            [
                "predict",
                "--checkpoint",
                "h.safetensors",
                "--output",
                "h.safetensors",
            ]
            .map(String::from)
            .to_vec(),
            ["--output", "--checkpoint"],
        ),
        (
            [
                "predict",
                "--checkpoint",
                "h.safetensors",
                "--features",
                "x.npy",
                "--output",
                "./x.npy",
            ]
            .map(String::from)
            .to_vec(),
            ["--output", "--features"],
        ),
    ];
    #[cfg(unix)]
    cases.push((
        train(&["--val-features", "vx.npy", "--curves", "link.svg"]),
        ["--curves", "--val-features"],
    ));
    for (args, [a, b]) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let se = refused_at_once(&dir, &args);
        assert!(se.contains(a) && se.contains(b), "{args:?}: {se}");
        assert!(!se.contains("epoch 1/"), "{args:?} started training: {se}");
        assert!(dir.snapshot() == before, "{args:?} changed a file");
    }
}

#[test]
fn every_output_is_checked_before_any_work() {
    let dir = Dir::new("preflight");
    std::fs::create_dir(dir.path("sub")).unwrap();
    dir.write("plain", b"a file");
    let before = dir.snapshot();
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--out", "new/"], "ends in a separator"),
        (vec!["--metrics", "sub"], "is a directory"),
        (vec!["--curves", "plain/c.svg"], "is not a directory"),
        (vec!["--out", "missing/h.safetensors"], "does not exist"),
    ];
    if Path::new("/proc/self").exists() {
        // a directory nobody may create files in, even root
        cases.push((
            vec!["--curves", "/proc/arcface-test.svg"],
            "does not take new files",
        ));
    }
    for (flags, why) in &cases {
        let mut args = vec!["train"];
        args.extend(FOREVER);
        args.extend(flags);
        let se = refused_at_once(&dir, &args);
        assert!(se.contains(flags[0]) && se.contains(why), "{flags:?}: {se}");
        assert!(dir.snapshot() == before, "{flags:?} changed a file");
    }
    if Path::new("/dev/null").exists() {
        let se = refused_at_once(
            &dir,
            &[
                "predict",
                "--checkpoint",
                "none.safetensors",
                "--output",
                "/dev/null",
            ],
        );
        assert!(
            se.contains("--output /dev/null: is not a regular file"),
            "{se}"
        );
    }
}

/// The outputs of one run, staged in this order: the checkpoint, the
/// optimiser state, the metrics and the curves (the last one new).
const RUN: [&str; 10] = [
    "train",
    "--quiet",
    "--epochs",
    "1",
    "--out",
    "h.safetensors",
    "--save-optimizer",
    "--metrics",
    "m.jsonl",
    "--curves",
];

#[test]
fn a_failure_at_any_step_of_the_commit_leaves_every_destination_as_it_was() {
    let dir = Dir::new("commit");
    dir.write("h.safetensors", b"old checkpoint");
    dir.write("h.optim.safetensors", b"old optimiser state");
    dir.write("m.jsonl", b"old metrics");
    let before = dir.snapshot();
    let args: Vec<&str> = RUN.iter().copied().chain(["c.svg"]).collect();
    for step in ["write", "backup", "rename"] {
        for k in 1..=4 {
            let hook = format!("{step}:{k}");
            let o = run_env(&dir, &args, &[("ARCFACE_TEST_FAIL_OUTPUT", &hook)]);
            let se = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{hook}: {se}");
            assert!(se.contains("failure injected"), "{hook}: {se}");
            // no temporary or backup file left, every old content in place, c.svg still absent
            assert!(dir.snapshot() == before, "{hook}: {:?}", dir.files());
        }
    }
    // without a failure every destination is replaced, and nothing else is left
    ok(&dir, &args);
    let after = dir.snapshot();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        ["c.svg", "h.optim.safetensors", "h.safetensors", "m.jsonl"]
    );
    for (name, old) in &before {
        assert_ne!(&after[name], old, "{name} was not replaced");
    }
}

#[test]
fn a_run_killed_while_it_trains_leaves_every_destination_as_it_was() {
    let dir = Dir::new("killed");
    dir.write("h.safetensors", b"old checkpoint");
    dir.write("m.jsonl", b"old metrics");
    let before = dir.snapshot();
    let mut child = command()
        .args(["train", "--epochs", "1000000", "--out", "h.safetensors"])
        .args([
            "--save-optimizer",
            "--metrics",
            "m.jsonl",
            "--curves",
            "c.svg",
        ])
        .current_dir(&dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.snapshot() == before, "{:?}", dir.files());
}
