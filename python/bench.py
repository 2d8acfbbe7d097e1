"""Overhead of the Python bindings: the same calls through Python and
through Rust (python/examples/bench_rust.rs), measured in the same run,
interleaved in rounds, on the same shapes and thread count.

    CARGO_TARGET_DIR=target cargo build --release -p arcface-python --example bench_rust
    python python/bench.py [--rounds 5] [--reps 10]

(with the wheel installed). Prints a Markdown table: median milliseconds of
each side over all repetitions (and the minimum) and their ratio; `predict`
runs ten times the repetitions (it is 50 times shorter). The `(tiny)` rows
(N, D, C, K) = (1, 8, 10, 1), a hundred times more repetitions, measure the
fixed cost of a call through the bindings (argument checks, releasing the
GIL, building the result), which bounds the overhead at any shape: a
contended machine moves the big rows' ratios by more than that. `step` is `head.loss(x, y)`
(forward and backward, returning the loss and both gradients as new arrays)
against `forward_backward` on a workspace; `step, out=` is the same with
the gradients written into two arrays allocated once; `predict` is `head.predict(x)`
against `predict` then `topk(1)`.
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

import arcface

STEP, PREDICT = (256, 512, 10_000, 1), (1, 512, 10_000, 1)
# (row name, the Rust example's op, shape)
TINY = (1, 8, 10, 1)
CALLS = [("step", "step", STEP), ("step, out=", "step", STEP), ("predict", "predict", PREDICT),
         ("step (tiny)", "step", TINY), ("predict (tiny)", "predict", TINY)]


def rust_times(exe, op, shape, reps):
    out = subprocess.run([exe, op, *map(str, shape), str(reps)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms"]


def python_times(name, shape, reps):
    n, d, c, k = shape
    head = arcface.ArcFaceClsHead(c, d, k, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.integers(0, c, n)
    out = (np.empty((n, d), np.float32), np.empty((c * k, d), np.float32))
    call = {
        "step": lambda: head.loss(x, y),
        "step, out=": lambda: head.loss(x, y, out=out),
        "predict": lambda: head.predict(x),
        "step (tiny)": lambda: head.loss(x, y),
        "predict (tiny)": lambda: head.predict(x),
    }[name]
    call()
    ms = []
    for _ in range(reps):
        t = time.perf_counter()
        call()
        ms.append((time.perf_counter() - t) * 1e3)
    return ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10)
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path(__file__).parents[1] / "target"))
    ap.add_argument("--exe", default=str(target / "release" / "examples" / "bench_rust"))
    a = ap.parse_args()
    print(f"simd {arcface.simd_level}, {os.cpu_count()} CPUs, {a.rounds} rounds x {a.reps} reps")
    print("| call | shape (N, D, C, K) | Rust ms, median (min) | Python ms, median (min) "
          "| Python / Rust, medians (minima) |")
    print("|---|---|---|---|---|")
    for name, op, shape in CALLS:
        r, p = [], []
        for _ in range(a.rounds):
            reps = a.reps * (10 if op == "predict" else 1) * (100 if shape == TINY else 1)
            r += rust_times(a.exe, op, shape, reps)
            p += python_times(name, shape, reps)
        mr, mp = float(np.median(r)), float(np.median(p))
        lr, lp = min(r), min(p)
        print(f"| {name} | {shape} | {mr:.4f} ({lr:.4f}) | {mp:.4f} ({lp:.4f}) "
              f"| {mp / mr:.3f} ({lp / lr:.3f}) |")


if __name__ == "__main__":
    main()
