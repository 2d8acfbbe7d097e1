//! Golden vectors from the real mmpretrain 1.2.0 code: one test per case
//! file of `tests/golden/` (or of the directory named by
//! `ARCFACE_GOLDEN_DIR`), and one per subcase of the margins-API case, so
//! that `cargo test --test golden p06` runs one case and a failing case is
//! reported alone. The checks live in `tests/common/golden/`.
//!
//! A passing test's message (the worst normalised errors, the deviations
//! that applied) is printed with `--nocapture`. Margins-API subcases whose
//! argument Rust's types cannot express are reported as ignored, with the
//! reason.

mod common;

use common::golden::{self, margins_api, Case};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::path::Path;

fn main() {
    let args = Arguments::from_args();
    let trials = trials(args.nocapture);
    libtest_mimic::run(&args, trials).exit();
}

/// One trial per case (per subcase for `margins_api`); a directory or file
/// that cannot be read is a failing trial of its own.
fn trials(verbose: bool) -> Vec<Trial> {
    let files = match golden::case_files(&golden::case_dir()) {
        Ok(files) => files,
        Err(e) => return vec![Trial::test("golden_dir", move || Err(e.into()))],
    };
    let mut out = Vec::new();
    for path in files {
        match golden::load(&path) {
            Err(e) => out.push(Trial::test(stem(&path), move || Err(e.into()))),
            Ok(case) if case.kind == "margins_api" => out.extend(api_trials(&case, verbose)),
            Ok(case) => out.push(case_trial(case, verbose)),
        }
    }
    out
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn case_trial(case: Case, verbose: bool) -> Trial {
    let (name, kind) = (case.name.clone(), case.kind.clone());
    Trial::test(name.clone(), move || {
        let msg = golden::check(&case).map_err(Failed::from)?;
        report(verbose, &name, &msg);
        Ok(())
    })
    .with_kind(kind)
}

/// `<case>::NN <argument>` per subcase, and `<case>::init_vs_set_margins`.
fn api_trials(case: &Case, verbose: bool) -> Vec<Trial> {
    let subcases = margins_api::subcases(&case.value);
    let mut out: Vec<Trial> = Vec::with_capacity(subcases.len() + 1);
    if subcases.is_empty() {
        let msg = format!("{}: no subcases", case.name);
        out.push(Trial::test(case.name.clone(), move || Err(msg.into())));
    }
    for (i, s) in subcases.into_iter().enumerate() {
        let name = format!("{}::{i:02} {}", case.name, margins_api::subcase_arg(&s));
        let trial =
            Trial::ignorable_test(name.clone(), move || {
                match margins_api::check_subcase(&s).map_err(Failed::from)? {
                    margins_api::Subcase::Checked(msg) => {
                        report(verbose, &name, &msg);
                        Ok(Completion::Completed)
                    }
                    margins_api::Subcase::Skipped(reason) => Ok(Completion::ignored_with(reason)),
                }
            });
        out.push(trial.with_kind(case.kind.clone()));
    }
    let name = format!("{}::init_vs_set_margins", case.name);
    let value = case.value.clone();
    out.push(
        Trial::test(name.clone(), move || {
            let msg = margins_api::check_init_vs_set(&value).map_err(Failed::from)?;
            report(verbose, &name, &msg);
            Ok(())
        })
        .with_kind(case.kind.clone()),
    );
    out
}

/// A passing check's message, shown with `--nocapture`.
fn report(verbose: bool, name: &str, msg: &str) {
    if verbose {
        println!("{name}: {msg}");
    }
}
