//! The committed fuzz corpus (`fuzz/corpus/<target>/`: seeds and every
//! input a fuzzer found worth keeping, crashes included), replayed through
//! the fuzz targets' decoders and checkers on stable Rust, and a helper that
//! runs a test in a child process.

use std::path::PathBuf;

/// `fuzz/corpus/<target>` in this checkout.
pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus (hidden files aside) as (name, bytes),
/// sorted by name; an empty corpus fails.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

/// Runs `check` on each file of the target's corpus, reporting every
/// failing file by name.
pub fn replay(target: &str, check: fn(&[u8])) {
    let mut failed = Vec::new();
    for (name, bytes) in corpus(target) {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "fuzz/corpus/{target}: {failed:?} fail");
}

/// Replays one kept corpus file through its target's checker.
pub fn replay_file(target: &str, name: &str, check: fn(&[u8])) {
    let bytes = std::fs::read(corpus_dir(target).join(name))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}/{name}: {e}"));
    check(&bytes);
}

/// Runs `body` in a child process (this test binary, filtered to the test
/// `name`, its full path within the binary), so that an abort (a failed
/// huge allocation) fails this test alone instead of killing every test of
/// the binary. Under a cargo runner (qemu for `scripts/test-aarch64.sh`) the
/// child runs through it too.
pub fn in_child(name: &str, body: impl FnOnce()) {
    if std::env::var_os("ARCFACE_IN_CHILD").is_some() {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let runner = std::env::vars()
        .find(|(k, _)| k.starts_with("CARGO_TARGET_") && k.ends_with("_RUNNER"))
        .map(|(_, v)| v);
    let mut cmd = match runner.as_deref().map(str::split_whitespace) {
        Some(mut parts) => {
            let mut c = std::process::Command::new(parts.next().expect("runner"));
            c.args(parts).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    let out = cmd
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("ARCFACE_IN_CHILD", "1")
        .output()
        .expect("spawn the test binary");
    assert!(
        out.status.success(),
        "{name} failed in a child process ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // a name that matches no test would run nothing and pass
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("running 1 test"),
        "{name}: the child process ran no test (is the name the test's full path?)"
    );
}
