//! Renders `bench_step` results (JSON lines) as the README's markdown table
//! and an SVG chart of step time against the three-product floor and the
//! PyTorch peers.
//!
//! `cargo run --release --example perf_chart -- docs/bench-results.jsonl docs/perf.svg docs/bench-table.md`
//!
//! With `--pfc RESULTS.jsonl OUT.svg` it renders instead the PartialFC chart
//! (`scripts/bench-pfc.sh`): the sampled step's time against C.
//!
//! The PyTorch figures are the anchors measured on this machine kind
//! (2 cores, AVX-512; `shared/notes/perf-anchors.md`, medians of 3 rounds):
//! torch 2.15 eager and `torch.compile` running mmpretrain's head forward and
//! backward in f32.
use serde_json::Value;
use std::fmt::Write as _;

#[path = "support/pfc_chart.rs"]
mod pfc_chart;

/// (n, d, c, k).
type Shape = (usize, usize, usize, usize);

/// shape → (eager 1t, eager 2t, compile 1t, compile 2t) in ms.
const PEERS: [(Shape, [f64; 4]); 7] = [
    ((32, 128, 500, 1), [1.12, 0.99, 0.71, 0.51]),
    ((64, 128, 1000, 1), [2.85, 1.92, 1.88, 1.13]),
    ((256, 512, 1000, 1), [15.2, 10.2, 11.2, 6.11]),
    ((256, 512, 10000, 1), [189.0, 98.5, 126.0, 60.0]),
    ((256, 512, 10000, 3), [553.0, 334.0, 289.0, 154.0]),
    ((128, 512, 100000, 1), [2297.0, 1410.0, 815.0, 446.0]),
    ((512, 512, 100000, 1), [5927.0, 3529.0, 2371.0, 1325.0]),
];

fn peer(shape: (usize, usize, usize, usize), threads: usize) -> Option<(f64, f64)> {
    PEERS.iter().find(|(s, _)| *s == shape).map(|(_, v)| {
        if threads == 1 {
            (v[0], v[2])
        } else {
            (v[1], v[3])
        }
    })
}

struct Row {
    shape: (usize, usize, usize, usize),
    threads: usize,
    step: f64,
    floor: f64,
    moved: f64,
    mem_floor: f64,
    rw_floor: f64,
    read: f64,
    logits: f64,
    gflops: f64,
    fma_gflops: f64,
    fma_floor: f64,
    rss: f64,
    simd: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, input, svg_out] = args.as_slice() {
        if flag == "--pfc" {
            let text = std::fs::read_to_string(input).expect("results file");
            let mut rows = pfc_chart::read_pfc(&text);
            rows.sort_by(|a, b| a.c.total_cmp(&b.c));
            std::fs::write(svg_out, pfc_chart::pfc_svg(&rows)).expect("write svg");
            println!("wrote {svg_out} from {} results", rows.len());
            return;
        }
    }
    let (input, svg_out, md_out) = match args.as_slice() {
        [a, b, c] => (a, b, c),
        _ => {
            eprintln!("usage: perf_chart RESULTS.jsonl OUT.svg OUT.md | perf_chart --pfc RESULTS.jsonl OUT.svg");
            std::process::exit(2);
        }
    };
    let text = std::fs::read_to_string(input).expect("results file");
    let rows = read_rows(&text);
    std::fs::write(md_out, markdown(&rows)).expect("write table");
    std::fs::write(svg_out, svg(&rows)).expect("write svg");
    println!("wrote {svg_out} and {md_out} from {} results", rows.len());
}

/// The JSON lines of `text` (lines starting with `{`) as rows; the fields
/// older results lack read as NaN.
fn read_rows(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("{"))
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            let u = |k: &str| v[k].as_u64().unwrap() as usize;
            let f = |k: &str| v[k].as_f64().unwrap();
            Row {
                shape: (u("n"), u("d"), u("c"), u("k")),
                threads: u("threads"),
                step: f("step_ms"),
                floor: f("gemm_floor_ms"),
                moved: f("weight_bytes_moved"),
                mem_floor: f("mem_floor_ms"),
                rw_floor: v["rw_floor_ms"].as_f64().unwrap_or(f64::NAN),
                read: v["read_ms"].as_f64().unwrap_or(f64::NAN),
                logits: v["logits_ms"].as_f64().unwrap_or(f64::NAN),
                gflops: f("gflops"),
                fma_gflops: v["fma_gflops"].as_f64().unwrap_or(f64::NAN),
                fma_floor: v["fma_floor_ms"].as_f64().unwrap_or(f64::NAN),
                rss: f("peak_rss_mb"),
                simd: v["simd"].as_str().unwrap_or("?").to_string(),
            }
        })
        .collect()
}

/// The markdown: the step table, the small batches' inference table, the
/// table against the FMA peak and the SIMD level.
fn markdown(rows: &[Row]) -> String {
    let mut md = String::new();
    step_table(&mut md, rows);
    inference_table(&mut md, rows);
    fma_table(&mut md, rows);
    if let Some(r) = rows.first() {
        let _ = writeln!(md, "\nSIMD level: {}.", r.simd);
    }
    md
}

/// One line per result: the step against the three-product floor, the
/// peers and the W-sized traffic.
fn step_table(md: &mut String, rows: &[Row]) {
    md.push_str("| shape (N, D, C, K) | threads | step ms | 3-product floor ms | step / floor | GFLOP/s | vs torch eager | vs torch.compile | W traffic MB | all at read speed ms | reads + writes as streams ms | step / streams | peak RSS MB |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let (n, d, c, k) = r.shape;
        let (e, co) = match peer(r.shape, r.threads) {
            Some((e, c)) => (
                format!("{:.1}× faster", e / r.step),
                format!("{:.1}× faster", c / r.step),
            ),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            md,
            "| {n}, {d}, {c}, {k} | {} | {:.3} | {:.3} | {:.3} | {:.0} | {e} | {co} | {:.1} | {:.3} | {:.3} | {} | {:.0} |",
            r.threads,
            r.step,
            r.floor,
            r.step / r.floor,
            r.gflops,
            r.moved / 1e6,
            r.mem_floor,
            r.rw_floor,
            // the bytes bound only the small batches' steps
            if n <= 16 {
                format!("{:.2}", r.step / r.rw_floor)
            } else {
                "–".into()
            },
            r.rss
        );
    }
}

/// Inference on small batches against one read of W.
fn inference_table(md: &mut String, rows: &[Row]) {
    let small: Vec<&Row> = rows.iter().filter(|r| r.shape.0 <= 16).collect();
    if !small.is_empty() {
        md.push_str("\nInference (`logits_into`, inference workspace) on the small batches, against one read of W:\n\n");
        md.push_str(
            "| shape (N, D, C, K) | threads | logits ms | read of W ms | logits / read |\n",
        );
        md.push_str("|---|---|---|---|---|\n");
        for r in small {
            let (n, d, c, k) = r.shape;
            let _ = writeln!(
                md,
                "| {n}, {d}, {c}, {k} | {} | {:.3} | {:.3} | {:.2} |",
                r.threads,
                r.logits,
                r.read,
                r.logits / r.read
            );
        }
    }
}

/// The FMA peak: how fast any step could be, and so the most any
/// implementation could beat the peers by.
fn fma_table(md: &mut String, rows: &[Row]) {
    let peaked: Vec<&Row> = rows
        .iter()
        .filter(|r| r.fma_floor.is_finite() && peer(r.shape, r.threads).is_some())
        .collect();
    if !peaked.is_empty() {
        md.push_str("\nAgainst the FMA peak (`fma_gflops`: register FMAs on every thread, no memory traffic): the step's 6·N·D·C·K flops at that peak, and so the most any f32 step could beat PyTorch eager by (eager's time from the table above over that floor):\n\n");
        md.push_str("| shape (N, D, C, K) | threads | FMA peak GFLOP/s | flops at peak ms | step / that | step's share of peak | eager / that (the most possible) |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        for r in peaked {
            let (n, d, c, k) = r.shape;
            let (e, _) = peer(r.shape, r.threads).unwrap_or((f64::NAN, f64::NAN));
            let _ = writeln!(
                md,
                "| {n}, {d}, {c}, {k} | {} | {:.0} | {:.3} | {:.2} | {:.0} % | {:.1}× |",
                r.threads,
                r.fma_gflops,
                r.fma_floor,
                r.step / r.fma_floor,
                100.0 * r.fma_floor / r.step,
                e / r.fma_floor
            );
        }
    }
}

/// The bars of one shape group, in this order, with their colours.
const SERIES: [(&str, &str); 4] = [
    ("arcface step", "#1f77b4"),
    ("three faer products (floor)", "#aec7e8"),
    ("torch eager", "#d62728"),
    ("torch.compile", "#ff9896"),
];

/// Panel width and height, left margin, and the space above and below each
/// panel, px.
const PW: f64 = 980.0;
const PH: f64 = 330.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 90.0;

/// One panel's geometry: its bottom edge and the log-scale range in
/// decades of ms shared by all panels.
struct Panel {
    base: f64,
    lo: f64,
    hi: f64,
}

impl Panel {
    /// The y of `ms` on the log scale.
    fn y(&self, ms: f64) -> f64 {
        self.base - (ms.log10() - self.lo) / (self.hi - self.lo) * PH
    }
}

/// The chart: one panel per thread count, log-scale bars per shape.
fn svg(rows: &[Row]) -> String {
    let shapes: Vec<Shape> = {
        let mut v: Vec<_> = rows.iter().map(|r| r.shape).collect();
        v.dedup();
        v
    };
    let threads: Vec<usize> = {
        let mut t: Vec<usize> = rows.iter().map(|r| r.threads).collect();
        t.sort();
        t.dedup();
        t
    };
    let height = threads.len() as f64 * (PH + TOP + BOTTOM) + 40.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
        PW + LEFT + 20.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let all: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r.step, r.floor])
        .chain(PEERS.iter().flat_map(|(_, v)| v.iter().copied()))
        .collect();
    let lo = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor();
    let hi = all.iter().copied().fold(0.0f64, f64::max).log10().ceil();
    for (pi, &t) in threads.iter().enumerate() {
        let y0 = 30.0 + pi as f64 * (PH + TOP + BOTTOM);
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="{}" font-size="15" font-weight="bold">Training step time, {t} thread{} (log scale, lower is better)</text>"#,
            y0 + 10.0,
            if t == 1 { "" } else { "s" }
        );
        let panel = Panel {
            base: y0 + TOP + PH,
            lo,
            hi,
        };
        grid(&mut svg, &panel);
        let gw = PW / shapes.len() as f64;
        for (si, &shape) in shapes.iter().enumerate() {
            let r = rows.iter().find(|r| r.shape == shape && r.threads == t);
            let x0 = LEFT + si as f64 * gw;
            shape_group(&mut svg, &panel, shape, t, r, x0, gw);
        }
        legend(&mut svg, panel.base);
    }
    svg.push_str("</svg>\n");
    svg
}

/// A grid line and label per decade.
fn grid(svg: &mut String, panel: &Panel) {
    let mut e = panel.lo;
    while e <= panel.hi {
        let y = panel.y(10f64.powf(e));
        let label = if e >= 3.0 {
            format!("{} s", 10f64.powf(e - 3.0))
        } else {
            format!("{} ms", 10f64.powf(e))
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
            LEFT + PW,
            LEFT - 6.0,
            y + 4.0
        );
        e += 1.0;
    }
}

/// One shape's bars (the result `r` of `t` threads if any, and the peers),
/// its label and its step / floor, in the `gw` px from `x0`.
fn shape_group(
    svg: &mut String,
    panel: &Panel,
    shape: Shape,
    t: usize,
    r: Option<&Row>,
    x0: f64,
    gw: f64,
) {
    let base = panel.base;
    let p = peer(shape, t);
    let vals = [
        r.map(|r| r.step),
        r.map(|r| r.floor),
        p.map(|p| p.0),
        p.map(|p| p.1),
    ];
    let bw = gw * 0.8 / 4.0;
    for (j, v) in vals.iter().enumerate() {
        if let Some(v) = v {
            let x = x0 + gw * 0.1 + j as f64 * bw;
            let y = panel.y(*v);
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {v:.3} ms</title></rect>"#,
                bw - 1.0,
                base - y,
                SERIES[j].1,
                SERIES[j].0
            );
        }
    }
    let (n, d, c, k) = shape;
    let cx = x0 + gw / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="{cx}" y="{}" text-anchor="middle">{n}×{d}</text><text x="{cx}" y="{}" text-anchor="middle">C={c} K={k}</text>"#,
        base + 16.0,
        base + 30.0
    );
    if let Some(r) = r {
        let _ = writeln!(
            svg,
            r##"<text x="{cx}" y="{}" text-anchor="middle" fill="#1f77b4">{:.2}× floor</text>"##,
            base + 46.0,
            r.step / r.floor
        );
    }
}

/// The series' colours and names under a panel whose bottom edge is `base`.
fn legend(svg: &mut String, base: f64) {
    for (j, (name, color)) in SERIES.iter().enumerate() {
        let x = LEFT + j as f64 * 220.0;
        let y = base + 66.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{name}</text>"#,
            y - 10.0,
            x + 16.0,
            y
        );
    }
}
