//! A reduced run of `examples/enrolment` (two seeds, three shot counts)
//! asserting what Qi, Brown and Lowe (CVPR 2018) report for weight
//! imprinting, on the shipped digits: imprinting alone beats random new rows
//! plus fine-tuning at n ≤ 2, imprinting plus fine-tuning is at least as
//! good as random plus fine-tuning at every n, and fine-tuning the new rows
//! only keeps the old classes within a point of the head before enrolment.

#[path = "../examples/enrolment/digits.rs"]
mod digits;
#[path = "../examples/enrolment/experiment.rs"]
mod experiment;

use experiment::Setup;

#[test]
fn imprinting_behaves_as_published_on_the_digits() {
    let setup = Setup {
        seeds: vec![0, 1],
        shots: vec![1, 2, 10],
        ..Setup::default()
    };
    for (n, before, a, b, c) in experiment::means(&setup, &experiment::run(&setup)) {
        let at = format!("n = {n}: before {before}, (a) {a:?}, (b) {b:?}, (c) {c:?}");
        if n <= 2 {
            assert!(a.novel > c.novel && a.all > c.all, "{at}");
        }
        assert!(b.novel >= c.novel && b.all >= c.all, "{at}");
        assert!(b.old >= before - 0.01, "{at}");
        // imprinting alone costs the old classes something, never everything
        assert!(a.old <= before && a.old > before - 0.2, "{at}");
    }
}
