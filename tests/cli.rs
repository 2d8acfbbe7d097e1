//! The `arcface` program end to end, one module per concern (in `tests/cli/`):
//! training, PyTorch interoperation, the class lifecycle, cleaning, errors, the outputs a run
//! writes, the
//! limits on memory and size, and how inputs are read. This file holds the
//! helpers they share.

mod common;

#[path = "cli/clean.rs"]
mod clean;
#[path = "cli/errors.rs"]
mod errors;
#[path = "cli/inputs.rs"]
mod inputs;
#[path = "cli/interop.rs"]
mod interop;
#[path = "cli/lifecycle.rs"]
mod lifecycle;
#[path = "cli/limits.rs"]
mod limits;
#[path = "cli/outputs.rs"]
mod outputs;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/training.rs"]
mod training;

use common::data::clusters;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_arcface");

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("arcface_cli_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    fn s(&self, f: &str) -> String {
        self.path(f).to_str().unwrap().to_string()
    }
    fn files(&self) -> BTreeSet<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }
    fn write(&self, f: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(f), bytes).unwrap();
        self.s(f)
    }
    /// Every file's name and content.
    fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.files()
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(self.path(&f)).unwrap_or_default();
                (f, bytes)
            })
            .collect()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The target's runner, when cargo uses one (see [`command`]).
fn runner() -> Option<(String, String)> {
    let arch = std::env::consts::ARCH.to_ascii_uppercase();
    std::env::vars()
        .find(|(k, _)| k.starts_with(&format!("CARGO_TARGET_{arch}_")) && k.ends_with("_RUNNER"))
}

/// The program's own peak memory, as its `--metrics` summary reports it:
/// `None` behind a runner (an emulator's memory is counted with it).
fn own_peak(metrics: &Path) -> Option<u64> {
    match runner() {
        Some((_, r)) if !r.trim().is_empty() => None,
        _ => summary(metrics)["peak_memory_bytes"].as_u64(),
    }
}

/// The program, behind the target's runner when cargo uses one (for example
/// `qemu-aarch64-static` in scripts/test-aarch64.sh, which exports
/// `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER`): the test binary inherits
/// that variable, and the program it starts needs the same runner.
fn command() -> Command {
    match runner() {
        Some((_, r)) if !r.trim().is_empty() => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(BIN);
            c
        }
        _ => Command::new(BIN),
    }
}

fn run(dir: &Dir, args: &[&str]) -> Output {
    run_env(dir, args, &[])
}

/// Runs with extra environment variables.
fn run_env(dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Output {
    command()
        .args(args)
        .envs(env.iter().copied())
        .current_dir(&dir.0)
        .output()
        .expect("runs")
}

fn ok(dir: &Dir, args: &[&str]) -> (String, String) {
    let o = run(dir, args);
    let (so, se) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "arcface {args:?} failed:\n{se}\n{so}");
    (so, se)
}

/// Runs, expects exit status `code`, returns stderr.
fn fails(dir: &Dir, args: &[&str], code: i32) -> String {
    let o = run(dir, args);
    let se = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "arcface {args:?}: {se}");
    assert!(se.starts_with("error: "), "{se}");
    assert!(!se.contains("panicked"), "{se}");
    se
}

fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    npy_with(descr, "False", shape, data)
}

fn npy_with(descr: &str, fortran: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_s}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn summary(metrics: &Path) -> Value {
    let text = std::fs::read_to_string(metrics).unwrap();
    let last = text.lines().last().unwrap();
    let v: Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["event"], "summary");
    v
}

/// A safetensors file holding only `head.norm_product.weight` (F32, rows × d),
/// as PyTorch exports it: no arcface metadata.
fn bare_checkpoint(w: &[f32], rows: usize, d: usize) -> Vec<u8> {
    assert_eq!(w.len(), rows * d);
    let mut h = format!(
        "{{\"head.norm_product.weight\":{{\"dtype\":\"F32\",\"shape\":[{rows},{d}],\"data_offsets\":[0,{}]}}}}",
        4 * w.len()
    )
    .into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(f32s(w));
    file
}
