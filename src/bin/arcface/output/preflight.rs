//! The checks of a run's files before any work, so that neither a typo nor
//! a clash costs a run or a user's file: every output can be written (the
//! path names a file, its directory exists and takes new files, and an
//! existing destination is a regular file), no output is an input of the
//! run, and no two outputs are the same file.
//!
//! Two paths are the same file when their canonical paths are equal or
//! (on Unix) they have the same device and inode, so `./x.npy`,
//! `dir/../x.npy`, symbolic links and hard links all count. Every problem
//! is a usage error (exit status 2) naming the flags involved.

use super::resolve;
use crate::CliError;
use std::path::{Path, PathBuf};

/// The files a run reads and writes, by the flag that names them.
#[derive(Debug, Default)]
pub struct Files {
    inputs: Vec<(String, PathBuf)>,
    outputs: Vec<(String, PathBuf)>,
}

/// What identifies a file: its canonical path (that of its directory joined
/// with its name, when it does not exist yet) and its device and inode.
#[derive(Debug, PartialEq)]
struct Identity {
    canonical: Option<PathBuf>,
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Self {
        match std::fs::metadata(path) {
            Ok(m) => Identity {
                canonical: std::fs::canonicalize(path).ok(),
                inode: inode(&m),
            },
            Err(_) => Identity {
                canonical: match (parent(path).canonicalize(), path.file_name()) {
                    (Ok(dir), Some(name)) => Some(dir.join(name)),
                    _ => None,
                },
                inode: None,
            },
        }
    }

    fn same(&self, other: &Identity) -> bool {
        (self.inode.is_some() && self.inode == other.inode)
            || (self.canonical.is_some() && self.canonical == other.canonical)
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The directory a file of `path` goes in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

impl Files {
    /// No files yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An input named by `flag` (nothing when `path` is `None`).
    pub fn input(&mut self, flag: &str, path: Option<impl AsRef<Path>>) -> &mut Self {
        if let Some(p) = path {
            self.inputs.push((flag.into(), p.as_ref().to_path_buf()));
        }
        self
    }

    /// An output named by `flag` (nothing when `path` is `None`).
    pub fn output(&mut self, flag: &str, path: Option<impl AsRef<Path>>) -> &mut Self {
        if let Some(p) = path {
            self.outputs.push((flag.into(), p.as_ref().to_path_buf()));
        }
        self
    }

    /// Every check of the module documentation, outputs in the order given.
    pub fn check(&self) -> Result<(), CliError> {
        for (flag, path) in &self.outputs {
            writable(path, flag)?;
        }
        let ids: Vec<Identity> = self.outputs.iter().map(|o| Identity::of(&o.1)).collect();
        for ((flag, path), id) in self.outputs.iter().zip(&ids) {
            if let Some((iflag, ipath)) =
                self.inputs.iter().find(|(_, ip)| Identity::of(ip).same(id))
            {
                return Err(CliError::Usage(format!(
                    "{flag} {} is the same file as {iflag} {}: the run would overwrite its input",
                    path.display(),
                    ipath.display()
                )));
            }
        }
        for (j, id) in ids.iter().enumerate() {
            if let Some(i) = ids[..j].iter().position(|earlier| earlier.same(id)) {
                let ((f1, p1), (f2, p2)) = (&self.outputs[i], &self.outputs[j]);
                return Err(CliError::Usage(format!(
                    "{f1} {} and {f2} {} are the same file: give each output its own path",
                    p1.display(),
                    p2.display()
                )));
            }
        }
        Ok(())
    }
}

/// `path` can be written by [`super::Outputs`]: it names a file (no
/// trailing `/`), an existing destination is a regular file, and the
/// directory it goes in exists and takes new files (tried by creating and
/// removing an empty hidden file there).
fn writable(path: &Path, flag: &str) -> Result<(), CliError> {
    let shown = path.display();
    let usage = |why: String| Err(CliError::Usage(format!("{flag} {shown}: {why}")));
    let text = path.as_os_str().to_string_lossy();
    if text.is_empty() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
        return usage("not a file path (it ends in a separator)".into());
    }
    let target = resolve(path);
    if target.file_name().is_none() {
        return usage("not a file path".into());
    }
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => return usage("is a directory".into()),
        Ok(m) if !m.is_file() => return usage(
            "is not a regular file (a device, pipe or socket); outputs are replaced by renaming"
                .into(),
        ),
        _ => {}
    }
    let dir = parent(&target);
    if !dir.is_dir() {
        let why = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return usage(format!("directory {} {why}", dir.display()));
    }
    let probe = dir.join(format!(".arcface-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => usage(format!(
            "directory {} does not take new files ({e})",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let d = std::env::temp_dir()
                .join(format!("arcface_preflight_{name}_{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn p(&self, f: &str) -> PathBuf {
            self.0.join(f)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn err(f: &Files) -> String {
        f.check().unwrap_err().to_string()
    }

    #[test]
    fn unwritable_paths_are_refused_naming_the_flag() {
        let dir = Dir::new("writable");
        std::fs::write(dir.p("file"), "x").unwrap();
        let one = |p: PathBuf| {
            let mut f = Files::new();
            f.output("--out", Some(p));
            f.check()
        };
        assert!(one(dir.p("ok.json")).is_ok());
        assert!(one(dir.p("file")).is_ok());
        let e = one(dir.p("missing/x.json")).unwrap_err().to_string();
        assert!(
            e.starts_with("--out ") && e.contains("does not exist"),
            "{e}"
        );
        let e = one(dir.p("file/x.json")).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
        let e = one(dir.0.clone()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let slash = PathBuf::from(format!("{}/", dir.p("new").display()));
        let e = one(slash).unwrap_err().to_string();
        assert!(e.contains("ends in a separator"), "{e}");
        #[cfg(unix)]
        {
            let e = one(PathBuf::from("/dev/null")).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        // the probe leaves nothing behind
        let mut names: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["file"]);
    }

    #[test]
    fn an_output_that_is_an_input_under_another_name_is_refused() {
        let dir = Dir::new("clash");
        std::fs::write(dir.p("x.npy"), "x").unwrap();
        let dotted = dir.0.join(".").join("x.npy");
        let mut f = Files::new();
        f.input("--features", Some(dir.p("x.npy")))
            .output("--out", Some(&dotted));
        let e = err(&f);
        assert!(
            e.starts_with("--out ") && e.contains("is the same file as --features"),
            "{e}"
        );
        std::fs::hard_link(dir.p("x.npy"), dir.p("hard")).unwrap();
        let mut f = Files::new();
        f.input("--features", Some(dir.p("x.npy")))
            .output("--metrics", Some(dir.p("hard")));
        assert!(err(&f).contains("--metrics"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.p("x.npy"), dir.p("link")).unwrap();
            let mut f = Files::new();
            f.input("--labels", Some(dir.p("link")))
                .output("--curves", Some(dir.p("x.npy")));
            assert!(err(&f).contains("--labels"));
        }
        // distinct files pass
        let mut f = Files::new();
        f.input("--features", Some(dir.p("x.npy")))
            .output("--out", Some(dir.p("h.safetensors")));
        assert!(f.check().is_ok());
    }

    #[test]
    fn two_outputs_naming_one_file_are_refused() {
        let dir = Dir::new("twice");
        let mut f = Files::new();
        f.output("--out", Some(dir.p("o"))).output(
            "--metrics",
            Some(dir.0.join("..").join(dir.0.file_name().unwrap()).join("o")),
        );
        let e = err(&f);
        assert!(
            e.starts_with("--out ") && e.contains("and --metrics"),
            "{e}"
        );
    }
}
