//! The PartialFC chart of `perf_chart`: the sampled step's time against
//! the class count C at a fixed kept count, beside the dense step of the
//! kept count, from `bench_step --sample-rate R --dense-c C'` JSON lines
//! (log–log lines, one point per C).

use serde_json::Value;
use std::fmt::Write as _;

/// One sampled run: C, threads, kept, and the two step times.
pub struct PfcRow {
    pub c: f64,
    pub threads: usize,
    pub kept: usize,
    pub sampled_ms: f64,
    pub dense_ms: f64,
}

/// The JSON lines of `text` that carry a sampled run.
pub fn read_pfc(text: &str) -> Vec<PfcRow> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            Some(PfcRow {
                c: v["c"].as_f64()?,
                threads: v["threads"].as_u64()? as usize,
                kept: v["kept"].as_u64()? as usize,
                sampled_ms: v["sampled_ms"].as_f64()?,
                dense_ms: v["dense_ms"].as_f64()?,
            })
        })
        .collect()
}

/// A line: its name, colour and value per row.
type Series = (&'static str, &'static str, fn(&PfcRow) -> f64);

const W: f64 = 720.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 50.0;

/// The chart of `rows` (sorted by C): x log C, y log ms.
pub fn pfc_svg(rows: &[PfcRow]) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        W + LEFT + 30.0,
        H + TOP + 80.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        svg.push_str("</svg>\n");
        return svg;
    };
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">PartialFC step time against C, {} kept classes, {} thread{} (log–log)</text>"#,
        first.kept,
        first.threads,
        if first.threads == 1 { "" } else { "s" }
    );
    let (clo, chi) = (first.c.log10().floor(), last.c.log10().ceil());
    let all = rows.iter().flat_map(|r| [r.sampled_ms, r.dense_ms]);
    let lo = all.clone().fold(f64::INFINITY, f64::min).log10().floor();
    let hi = all.fold(0.0f64, f64::max).log10().ceil();
    let x = |c: f64| LEFT + (c.log10() - clo) / (chi - clo) * W;
    let y = |ms: f64| TOP + H - (ms.log10() - lo) / (hi - lo) * H;
    for e in (lo as i32)..=(hi as i32) {
        let v = 10f64.powi(e);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{yv:.1}" y2="{yv:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{v} ms</text>"##,
            x2 = LEFT + W,
            yv = y(v),
            tx = LEFT - 6.0,
            ty = y(v) + 4.0
        );
    }
    for e in (clo as i32)..=(chi as i32) {
        let c = 10f64.powi(e);
        let _ = writeln!(
            svg,
            r##"<line x1="{xc:.1}" x2="{xc:.1}" y1="{TOP}" y2="{yb}" stroke="#eee"/><text x="{xc:.1}" y="{yt}" text-anchor="middle">C = {c}</text>"##,
            xc = x(c),
            yb = TOP + H,
            yt = TOP + H + 18.0
        );
    }
    let series: [Series; 2] = [
        ("sampled step (catch-up and sparse SGD)", "#1f77b4", |r| {
            r.sampled_ms
        }),
        ("dense step of the kept count", "#aec7e8", |r| r.dense_ms),
    ];
    for (j, (name, color, value)) in series.iter().enumerate() {
        let points: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.1},{:.1}", x(r.c), y(value(r))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            points.join(" ")
        );
        for r in rows {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{name}, C = {}: {:.1} ms</title></circle>"#,
                x(r.c),
                y(value(r)),
                r.c,
                value(r)
            );
        }
        let lx = LEFT + j as f64 * 320.0;
        let ly = TOP + H + 50.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{ly}">{name}</text>"#,
            ly - 10.0,
            lx + 16.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
