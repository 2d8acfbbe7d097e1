//! Few-shot enrolment on the shipped digits (Qi, Brown and Lowe, CVPR 2018):
//! a head trained on 7 classes gets the other 3 from n training samples each,
//! by imprinting alone, imprinting then fine-tuning, or random new rows then
//! the same fine-tuning. Prints a markdown table of test top-1 (means over
//! the seeds) on the novel classes, the old ones and all ten.
//!
//! ```text
//! cargo run --release --example enrolment
//! cargo run --release --example enrolment -- --seeds 2 --shots 1,5
//! cargo run --release --example enrolment -- --freeze-old   # fine-tune the new rows only
//! ```
//!
//! See `experiment.rs` for the protocol.

mod digits;
mod experiment;

use experiment::{Acc, Setup};

fn parse() -> Setup {
    let mut s = Setup::default();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut argv = argv.as_slice();
    if argv.first().map(String::as_str) == Some("--freeze-old") {
        s.freeze_old = true;
        argv = &argv[1..];
    }
    for pair in argv.chunks(2) {
        let v = pair.get(1).map(String::as_str).unwrap_or_default();
        let num = |v: &str| -> usize {
            v.parse()
                .unwrap_or_else(|_| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--seeds" => s.seeds = (0..num(v) as u64).collect(),
            "--shots" => s.shots = v.split(',').map(num).collect(),
            "--epochs" => s.finetune_epochs = num(v),
            "--lr" => s.finetune_lr = v.parse().expect("--lr needs a number"),
            other => panic!("unknown argument {other} (use [--freeze-old] --seeds N --shots 1,2,5 --epochs E --lr LR)"),
        }
    }
    s
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn cells(a: &Acc) -> String {
    format!("{} | {} | {}", pct(a.novel), pct(a.old), pct(a.all))
}

fn main() {
    let setup = parse();
    let t = std::time::Instant::now();
    let outcomes = experiment::run(&setup);
    println!(
        "{} seeds; fine-tuning: {} epochs at lr {}, {}; test top-1 %\n",
        setup.seeds.len(),
        setup.finetune_epochs,
        setup.finetune_lr,
        if setup.freeze_old {
            "new rows only (old rows frozen)"
        } else {
            "every row"
        }
    );
    println!("| n | old, before | (a) imprint: novel | old | all | (b) imprint + ft: novel | old | all | (c) random + ft: novel | old | all |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, before, a, b, c) in experiment::means(&setup, &outcomes) {
        println!(
            "| {n} | {} | {} | {} | {} |",
            pct(before),
            cells(&a),
            cells(&b),
            cells(&c)
        );
    }
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());
}
