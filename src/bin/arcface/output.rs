//! Every file a run writes goes through [`Outputs`]: each is first written
//! in full to a temporary file beside its destination, and only when all are
//! written are they renamed into place together. On any failure, before or
//! during the commit, every temporary file is removed and every destination
//! keeps its previous content (or stays absent).
//!
//! The commit keeps a hard link (a copy where links are not supported) to
//! each destination it replaces until every rename has succeeded, so that a
//! failed rename can put the earlier ones back. Each rename is atomic, so a
//! crash leaves every destination whole, old or new.

use crate::CliError;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Checks, before any work, that `path` can be written later: its directory
/// exists and it is not a directory itself. `flag` names the option.
pub fn check_writable(path: &str, flag: &str) -> Result<(), CliError> {
    let p = Path::new(path);
    if p.is_dir() {
        return Err(CliError::Usage(format!("--{flag} {path}: is a directory")));
    }
    if p.file_name().is_none() {
        return Err(CliError::Usage(format!(
            "--{flag} {path:?}: not a file path"
        )));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "--{flag} {path}: directory {} does not exist",
            dir.display()
        )));
    }
    Ok(())
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
        let dest = dest.as_ref().to_path_buf();
        let tmp = sibling(&dest, self.staged.len(), "tmp")?;
        if let Err(e) = write(&tmp) {
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
        Some(b)
    } else {
        None
    };
    match std::fs::rename(&s.tmp, &s.dest) {
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
