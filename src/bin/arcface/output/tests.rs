use super::*;
use std::collections::BTreeSet;

/// A fresh directory under the system's temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("arcface_output_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn p(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    fn files(&self) -> BTreeSet<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }
    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.p(f)).unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn commit_puts_every_file_in_place_and_leaves_nothing_else() {
    let dir = Dir::new("commit");
    std::fs::write(dir.p("b"), "old").unwrap();
    let mut out = Outputs::new();
    out.stage(dir.p("a"), b"first").unwrap();
    out.stage(dir.p("b"), b"second").unwrap();
    out.stage_with(dir.p("c"), |tmp| {
        std::fs::write(tmp, "third").map_err(|e| write_err(tmp, e))
    })
    .unwrap();
    // staged, not yet visible
    assert_eq!(dir.read("b"), "old");
    assert!(!dir.p("a").exists() && !dir.p("c").exists());
    out.commit().unwrap();
    assert_eq!(dir.files(), set(&["a", "b", "c"]));
    assert_eq!(
        (dir.read("a"), dir.read("b"), dir.read("c")),
        ("first".into(), "second".into(), "third".into())
    );
}

#[test]
fn a_failure_while_staging_leaves_every_destination_untouched() {
    let dir = Dir::new("stage");
    std::fs::write(dir.p("a"), "old").unwrap();
    let mut out = Outputs::new();
    out.stage(dir.p("a"), b"new").unwrap();
    let e = out
        .stage_with(dir.p("b"), |tmp| {
            std::fs::write(tmp, "partial").unwrap();
            Err(CliError::Usage("the writer failed".into()))
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "the writer failed");
    assert!(out.stage(dir.p("no/such/dir/c"), b"x").is_err());
    drop(out);
    assert_eq!(dir.files(), set(&["a"]));
    assert_eq!(dir.read("a"), "old");
}

#[test]
fn a_failed_rename_puts_the_earlier_ones_back() {
    let dir = Dir::new("rollback");
    std::fs::write(dir.p("a"), "old a").unwrap();
    let mut out = Outputs::new();
    out.stage(dir.p("a"), b"new a").unwrap();
    out.stage(dir.p("b"), b"new b").unwrap();
    out.stage(dir.p("c"), b"new c").unwrap();
    // c's destination becomes a directory after staging: its rename fails
    std::fs::create_dir(dir.p("c")).unwrap();
    std::fs::write(dir.p("c/inside"), "kept").unwrap();
    let e = out.commit().unwrap_err();
    assert!(e.to_string().contains("cannot write"), "{e}");
    assert_eq!(dir.files(), set(&["a", "c"]));
    assert_eq!(dir.read("a"), "old a");
    assert_eq!(dir.read("c/inside"), "kept");
}

#[test]
fn the_last_file_staged_for_a_destination_wins() {
    let dir = Dir::new("twice");
    let mut out = Outputs::new();
    out.stage(dir.p("a"), b"one").unwrap();
    out.stage(dir.p("a"), b"two").unwrap();
    out.commit().unwrap();
    assert_eq!(dir.files(), set(&["a"]));
    assert_eq!(dir.read("a"), "two");
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_is_written_through_and_kept() {
    let dir = Dir::new("symlink");
    std::fs::create_dir(dir.p("real")).unwrap();
    std::fs::write(dir.p("real/target"), "old").unwrap();
    std::os::unix::fs::symlink(dir.p("real/target"), dir.p("link")).unwrap();
    let mut out = Outputs::new();
    out.stage(dir.p("link"), b"new").unwrap();
    out.commit().unwrap();
    assert!(std::fs::symlink_metadata(dir.p("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(dir.read("real/target"), "new");
    assert_eq!(dir.files(), set(&["link", "real"]));
}
