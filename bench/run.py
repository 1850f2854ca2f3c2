"""Benchmark: generated losses against Keras's built-ins, and compile speed.

For every bundled loss with a Keras counterpart (lossdsl/library/counterparts.py)
it times one forward+backward step (per-sample loss summed, gradient with
respect to y_pred) of the generated loss and of the Keras built-in on the same
tensors, in the same process, interleaved A B A B, and reports the median of
the per-pair ratios ours/Keras, under `tf.function` and under
`tf.function(jit_compile=True)` (XLA), at batch x classes 8192 x 128 and
256 x 10. The floor column is the same step for `mean(y_pred)` (read the
input once, write the gradient once): ours/floor says how far a loss is from
the memory-bound limit. Compile latency (parse, checks, SymPy, Keras source,
LaTeX; caches cleared) is the median per bundled program after a warm-up.

    python bench/run.py [--quick] [--json OUT.json] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = ((8192, 128), (256, 10))
QUICK_SIZES = ((256, 10),)
MODES = (("tf.function", False), ("xla", True))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few pairs: a smoke test")
    parser.add_argument("--json", metavar="OUT.json", help="write all numbers as JSON")
    parser.add_argument("--markdown", metavar="OUT.md", help="write the table as Markdown")
    parser.add_argument("--pairs", type=int, default=None, help="timed A/B pairs per case (default 25; quick 5)")
    parser.add_argument("--only", nargs="*", default=None, help="bundled loss names to run (default: all)")
    return parser.parse_args(argv)


def geomean(values) -> float:
    values = [v for v in values if v and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def step_function(tf, fn, jit: bool):
    """A compiled step: the per-sample loss summed, and its gradient with respect to y_pred."""

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def step(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            total = tf.reduce_sum(fn(y_true, y_pred))
        return total, tape.gradient(total, y_pred)

    return step


def run_once(step, args) -> float:
    start = time.perf_counter()
    total, grad = step(*args)
    total.numpy()
    return time.perf_counter() - start


def timed_pairs(step_a, step_b, args, pairs: int, warmup: int = 3):
    """Median of per-pair ratios a/b and the median times of a and b (interleaved A B A B)."""
    for _ in range(warmup):
        run_once(step_a, args)
        run_once(step_b, args)
    ta, tb = [], []
    for _ in range(pairs):
        ta.append(run_once(step_a, args))
        tb.append(run_once(step_b, args))
    ratios = [a / b for a, b in zip(ta, tb, strict=True)]
    return statistics.median(ratios), statistics.median(ta), statistics.median(tb)


def bench_losses(args) -> list[dict]:
    import keras
    import numpy as np
    import tensorflow as tf

    import lossdsl
    from lossdsl.library.counterparts import COUNTERPARTS

    sizes = QUICK_SIZES if args.quick else SIZES
    pairs = args.pairs or (5 if args.quick else 25)
    cases = {k: v for k, v in COUNTERPARTS.items() if "/" not in k}
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only}
    rows = []
    for b, c in sizes:
        rng = np.random.default_rng(0)
        floor_fn = lambda t, p: keras.ops.mean(p, axis=-1)  # noqa: E731
        for mode, jit in MODES:
            floors = {}
            for name, case in cases.items():
                y_true = tf.constant(case.make_true(rng, b, c))
                y_pred = tf.constant(case.make_pred(rng, b, c))
                ours = lossdsl.library.compile(name).keras_loss(**case.params).call
                reference = getattr(keras.losses, case.keras_name)
                kwargs = dict(case.keras_kwargs)
                theirs = lambda t, p, f=reference, kw=kwargs: f(t, p, **kw)  # noqa: E731
                step_ours = step_function(tf, ours, jit)
                step_theirs = step_function(tf, theirs, jit)
                ratio, t_ours, t_theirs = timed_pairs(step_ours, step_theirs, (y_true, y_pred), pairs)
                key = (tuple(y_pred.shape), str(y_pred.dtype))
                if key not in floors:
                    step_floor = step_function(tf, floor_fn, jit)
                    floors[key] = timed_pairs(step_floor, step_floor, (y_true, y_pred), pairs, warmup=3)[1]
                rows.append(
                    {
                        "loss": name,
                        "batch": b,
                        "classes": c,
                        "mode": mode,
                        "ours_s": t_ours,
                        "keras_s": t_theirs,
                        "ratio": ratio,
                        "floor_s": floors[key],
                        "ours_over_floor": t_ours / floors[key],
                    }
                )
                print(
                    f"  {mode:12s} {b}x{c} {name:45s} ours/keras {ratio:5.2f}  ours/floor {t_ours / floors[key]:5.2f}",
                    file=sys.stderr,
                )
    return rows


def bench_compile(args) -> dict:
    import lossdsl
    from lossdsl import pipeline

    names = lossdsl.library.names()
    repeats = 3 if args.quick else 15

    def full_compile(name: str) -> None:
        spec = lossdsl.library.compile(name)
        spec.python_source()
        spec.latex()

    for name in names:  # warm-up: imports, parser construction
        full_compile(name)
    per_program = {}
    for name in names:
        times = []
        for _ in range(repeats):
            pipeline._front_end_cached.cache_clear()
            start = time.perf_counter()
            full_compile(name)
            times.append(time.perf_counter() - start)
        per_program[name] = statistics.median(times)
    pipeline._front_end_cached.cache_clear()
    start = time.perf_counter()
    for name in names:
        full_compile(name)
    one_pass = time.perf_counter() - start
    return {
        "median_ms": 1000 * statistics.median(per_program.values()),
        "max_ms": 1000 * max(per_program.values()),
        "per_program_ms": {k: 1000 * v for k, v in per_program.items()},
        "compiles_per_second": len(names) / one_pass,
        "programs": len(names),
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import keras
    import tensorflow as tf

    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__} ({keras.backend.backend()} backend)"
    )


def markdown(result: dict) -> str:
    lines = [
        f"Machine: {result['machine']}  ",
        f"Date: {result['date']}  ",
        f"Command: `{result['command']}`",
        "",
    ]
    rows = result["rows"]
    for b, c in sorted({(r["batch"], r["classes"]) for r in rows}, reverse=True):
        lines += [
            f"### {b} x {c}",
            "",
            "| loss | ours/Keras tf.function | ours/Keras XLA | ours/floor tf.function | ours/floor XLA |",
            "|---|---:|---:|---:|---:|",
        ]
        by_loss: dict[str, dict] = {}
        for r in rows:
            if (r["batch"], r["classes"]) == (b, c):
                by_loss.setdefault(r["loss"], {})[r["mode"]] = r
        for name, modes in sorted(by_loss.items()):
            tf_row, xla_row = modes.get("tf.function"), modes.get("xla")
            lines.append(
                f"| {name} | {tf_row['ratio']:.2f} | {xla_row['ratio']:.2f} "
                f"| {tf_row['ours_over_floor']:.2f} | {xla_row['ours_over_floor']:.2f} |"
            )
        summary = result["summary"][f"{b}x{c}"]
        lines.append(
            f"| **geometric mean** | **{summary['tf.function']['geomean']:.2f}** | **{summary['xla']['geomean']:.2f}** "
            f"| {summary['tf.function']['floor_geomean']:.2f} | {summary['xla']['floor_geomean']:.2f} |"
        )
        lines.append(f"| max | {summary['tf.function']['max']:.2f} | {summary['xla']['max']:.2f} | | |")
        lines.append("")
    comp = result["compile"]
    lines += [
        "### Compile speed",
        "",
        f"Median compile latency per bundled program (parse, checks, SymPy, Keras source, LaTeX):"
        f" **{comp['median_ms']:.2f} ms** (max {comp['max_ms']:.2f} ms);"
        f" **{comp['compiles_per_second']:.0f} compiles/s** over the {comp['programs']} bundled programs.",
        "",
    ]
    return "\n".join(lines)


def summarize(rows: list[dict]) -> dict:
    summary = {}
    for b, c in {(r["batch"], r["classes"]) for r in rows}:
        per_mode = {}
        for mode, _ in MODES:
            sel = [r for r in rows if (r["batch"], r["classes"], r["mode"]) == (b, c, mode)]
            per_mode[mode] = {
                "geomean": geomean(r["ratio"] for r in sel),
                "max": max(r["ratio"] for r in sel),
                "worst": max(sel, key=lambda r: r["ratio"])["loss"],
                "floor_geomean": geomean(r["ours_over_floor"] for r in sel),
            }
        summary[f"{b}x{c}"] = per_mode
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows = bench_losses(args)
    result = {
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "command": command.strip(),
        "rows": rows,
        "summary": summarize(rows),
        "compile": bench_compile(args),
    }
    table = markdown(result)
    print(table)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
