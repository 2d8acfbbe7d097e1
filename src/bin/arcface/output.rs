//! Every file a run writes goes through [`Outputs`]: each is first written
//! in full to a temporary file beside its destination, and only when all are
//! written are they renamed into place together. On any failure, before or
//! during the commit, every temporary file is removed and every destination
//! keeps its previous content (or stays absent).
//!
//! The commit keeps a hard link (a copy where links are not supported) to
//! each destination it replaces until every rename has succeeded, so that a
//! failed rename can put the earlier ones back. Each rename is atomic, so a
//! crash leaves every destination whole, old or new. A destination that is
//! a symbolic link is written through: its target is replaced, the link kept.
//!
//! [`Files`] checks a run's outputs against each other and its inputs before
//! any work.
//!
//! Test hook: the environment variable `ARCFACE_TEST_FAIL_OUTPUT=STEP:K`
//! makes the K-th output (1-based, in the order staged) fail at STEP:
//! `write` (its temporary file is written, then the writer reports an
//! error), `backup` (keeping a second name for its destination's old
//! content) or `rename` (moving it into place; for K ≥ 2 that is between
//! two renames). The test suite uses it to check that a failure at every
//! step leaves every destination as it was and no temporary file behind.
//! It is read here only.

mod preflight;

pub use preflight::Files;

use crate::CliError;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The test hook's variable (see the module documentation).
const FAIL_HOOK: &str = "ARCFACE_TEST_FAIL_OUTPUT";

/// The error the test hook injects when it names `step` of output `k` (0-based).
fn injected(step: &str, k: usize) -> Result<(), std::io::Error> {
    let Some(v) = std::env::var_os(FAIL_HOOK) else {
        return Ok(());
    };
    if v.to_str() == Some(&format!("{step}:{}", k + 1)) {
        return Err(std::io::Error::other(format!(
            "failure injected by {FAIL_HOOK}"
        )));
    }
    Ok(())
}

/// Where a file for `dest` goes: the target of a symbolic link (so that
/// the link is kept), else `dest` itself.
pub fn resolve(dest: &Path) -> PathBuf {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf())
        }
        _ => dest.to_path_buf(),
    }
}

/// One staged file: where it goes, and where it is until then.
#[derive(Debug)]
struct Staged {
    dest: PathBuf,
    tmp: PathBuf,
}

/// The files of one run, staged until [`Outputs::commit`]. Dropping it
/// uncommitted removes every temporary file.
#[derive(Debug, Default)]
pub struct Outputs {
    staged: Vec<Staged>,
}

/// `dir/.name.<pid>-<k>.<what>`: hidden, beside `dest`, unique per run and file.
fn sibling(dest: &Path, k: usize, what: &str) -> Result<PathBuf, CliError> {
    let name = dest
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("{:?} is not a file path", dest.display())))?;
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(".{}-{k}.{what}", std::process::id()));
    Ok(dest.with_file_name(s))
}

fn write_err(path: &Path, e: std::io::Error) -> CliError {
    CliError::input(&path.display().to_string(), format!("cannot write: {e}"))
}

impl Outputs {
    /// Nothing staged yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages `bytes` for `dest`.
    pub fn stage(&mut self, dest: impl AsRef<Path>, bytes: &[u8]) -> Result<(), CliError> {
        let dest = dest.as_ref();
        self.stage_with(dest, |tmp| {
            let mut f = std::fs::File::create(tmp).map_err(|e| write_err(dest, e))?;
            f.write_all(bytes).map_err(|e| write_err(dest, e))?;
            f.sync_all().map_err(|e| write_err(dest, e))
        })
    }

    /// Stages a file that `write` creates at the temporary path it is given
    /// (for writers that take a path). A later file for the same `dest`
    /// replaces an earlier one.
    pub fn stage_with(
        &mut self,
        dest: impl AsRef<Path>,
        write: impl FnOnce(&Path) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let shown = dest.as_ref();
        let dest = resolve(shown);
        let k = self.staged.len();
        let tmp = sibling(&dest, k, "tmp")?;
        let written =
            write(&tmp).and_then(|()| injected("write", k).map_err(|e| write_err(shown, e)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Some(k) = self.staged.iter().position(|s| s.dest == dest) {
            let old = self.staged.remove(k);
            let _ = std::fs::remove_file(old.tmp);
        }
        self.staged.push(Staged { dest, tmp });
        Ok(())
    }

    /// Renames every staged file into place, or none of them.
    pub fn commit(mut self) -> Result<(), CliError> {
        let staged = std::mem::take(&mut self.staged);
        let mut done: Vec<(&Staged, Option<PathBuf>)> = Vec::with_capacity(staged.len());
        let mut failure = None;
        for (k, s) in staged.iter().enumerate() {
            match replace(s, k) {
                Ok(backup) => done.push((s, backup)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            None => {
                for (_, backup) in done {
                    if let Some(b) = backup {
                        let _ = std::fs::remove_file(b);
                    }
                }
                Ok(())
            }
            Some(e) => {
                // Newest first, so a destination staged twice under two
                // spellings ends with its first content.
                for (s, backup) in done.into_iter().rev() {
                    let _ = match backup {
                        Some(b) => std::fs::rename(b, &s.dest),
                        None => std::fs::remove_file(&s.dest),
                    };
                }
                for s in &staged {
                    let _ = std::fs::remove_file(&s.tmp);
                }
                Err(e)
            }
        }
    }
}

/// Keeps a second name for `s.dest`'s current content (if any), then renames
/// the staged file over it. Returns that second name.
fn replace(s: &Staged, k: usize) -> Result<Option<PathBuf>, CliError> {
    let backup = if s.dest.is_file() {
        let b = sibling(&s.dest, k, "bak")?;
        let _ = std::fs::remove_file(&b);
        if std::fs::hard_link(&s.dest, &b).is_err() {
            std::fs::copy(&s.dest, &b).map_err(|e| write_err(&s.dest, e))?;
        }
        if let Err(e) = injected("backup", k) {
            let _ = std::fs::remove_file(b);
            return Err(write_err(&s.dest, e));
        }
        Some(b)
    } else {
        injected("backup", k).map_err(|e| write_err(&s.dest, e))?;
        None
    };
    let renamed = injected("rename", k).and_then(|()| std::fs::rename(&s.tmp, &s.dest));
    match renamed {
        Ok(()) => Ok(backup),
        Err(e) => {
            if let Some(b) = backup {
                let _ = std::fs::remove_file(b);
            }
            Err(write_err(&s.dest, e))
        }
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for s in &self.staged {
            let _ = std::fs::remove_file(&s.tmp);
        }
    }
}

#[cfg(test)]
mod tests;
