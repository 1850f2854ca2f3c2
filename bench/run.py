"""Benchmark: generated losses against Keras's built-ins, and compile speed.

For every bundled loss with a Keras counterpart (lossdsl/library/counterparts.py)
it times one forward+backward step (per-sample loss summed, gradient with
respect to y_pred) of the generated loss and of the Keras built-in on the same
tensors, in the same process, interleaved A B A B (with the floor, below:
A B F A B F), and reports the median of
the per-pair ratios ours/Keras (the pairs taken in 5 rounds over all cases),
under `tf.function` and under `tf.function(jit_compile=True)` (XLA), at batch
x classes 8192 x 128 and 256 x 10; under XLA a second time for the code
`python_source(xla=True)` writes (spelled for XLA: softplus/sigmoid and
log_softmax/softmax share one exp, one log for a difference of two log1p,
log1p as a log and its rounding error). The
floor column is the same step for `mean(y_pred)` (read the input once, write
the gradient once), timed in the same rotation (ours, Keras, floor, ours, ...)
on each case's tensors: ours/floor says how far a loss is from the memory-bound
limit. Compile latency (parse, checks, SymPy, Keras source,
LaTeX; caches cleared) is the median per bundled program after a warm-up.

Other Keras backends: `--backend jax` or `--backend torch` measures the same
ratios against Keras's built-ins ON THAT BACKEND (KERAS_BACKEND is set before
Keras is imported; the script starts itself again with it when Keras was
already imported with another one). The step is the backend's own autodiff:

* JAX: `jax.value_and_grad` of the summed loss, eager and under `jax.jit`
  (results are waited for with `block_until_ready`), and under `jax.jit` for
  the code spelled for XLA;
* PyTorch: `torch.autograd.grad` of the summed loss, eager; `--torch-compile`
  adds a `torch.compile` column. It works on the CPU but compiles each step
  for seconds (about 20 s for the first, 3-5 s for each after it), minutes
  for the whole table, so it is not on by default.

    python bench/run.py [--quick] [--backend tensorflow|jax|torch] [--torch-compile]
                        [--json OUT.json] [--markdown OUT.md]
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
# "xla-spelled" and "jax.jit-spelled": XLA again, timing the code `python_source(xla=True)`
# writes (spelled for XLA).
SPELLED = "xla-spelled"
JAX_SPELLED = "jax.jit-spelled"
MODES = (("tf.function", False), ("xla", True), (SPELLED, True))
BACKENDS = ("tensorflow", "jax", "torch")
# Backend -> its modes: (name, compiled). TensorFlow's are MODES.
BACKEND_MODES = {
    "tensorflow": MODES,
    "jax": (("eager", False), ("jax.jit", True), (JAX_SPELLED, True)),
    "torch": (("eager", False), ("torch.compile", True)),
}
# Column headings where they differ from the mode's name.
LABELS = {
    "xla": "XLA",
    SPELLED: "XLA, xla=True code",
    JAX_SPELLED: "jax.jit, xla=True code",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and few pairs: a smoke test"
    )
    parser.add_argument("--json", metavar="OUT.json", help="write all numbers as JSON")
    parser.add_argument(
        "--markdown", metavar="OUT.md", help="write the table as Markdown"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="timed A/B pairs per case (default 25; quick 5)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="bundled loss names to run (default: all)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="tensorflow",
        help="the Keras backend to measure on (sets KERAS_BACKEND; default tensorflow)",
    )
    parser.add_argument(
        "--torch-compile",
        action="store_true",
        help="with --backend torch: also time torch.compile (seconds of compiling per step)",
    )
    return parser.parse_args(argv)


def modes_of(args) -> tuple[tuple[str, bool], ...]:
    """The (mode, compiled) pairs measured for `args.backend`."""
    modes = BACKEND_MODES[args.backend]
    if args.backend == "torch" and not args.torch_compile:
        modes = tuple(m for m in modes if not m[1])
    return modes


def select_backend(backend: str, argv) -> None:
    """Make `backend` Keras's backend: set KERAS_BACKEND, or start this script again with it set."""
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = backend
        return
    if keras.backend.backend() == backend:
        return
    if argv is not None:
        raise SystemExit(
            f"Keras is already imported with the {keras.backend.backend()} backend, not {backend}"
        )
    env = {**os.environ, "KERAS_BACKEND": backend}
    os.execve(
        sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env
    )


def geomean(values) -> float:
    values = [v for v in values if v and math.isfinite(v)]
    return (
        math.exp(sum(math.log(v) for v in values) / len(values))
        if values
        else float("nan")
    )


def step_function(tf, fn, jit: bool):
    """A compiled step (TensorFlow): the per-sample loss summed, and its gradient with respect to y_pred."""

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def step(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            total = tf.reduce_sum(fn(y_true, y_pred))
        return total, tape.gradient(total, y_pred)

    return step


def jax_step_function(fn, jit: bool):
    """The JAX step: `value_and_grad` of the summed loss with respect to y_pred, eager or under `jax.jit`."""
    import jax
    import jax.numpy as jnp

    step = jax.value_and_grad(
        lambda y_true, y_pred: jnp.sum(fn(y_true, y_pred)), argnums=1
    )
    return jax.jit(step) if jit else step


def torch_step_function(fn, compiled: bool):
    """The PyTorch step: the summed loss and `torch.autograd.grad` of it, eager or under `torch.compile`."""
    import torch

    def step(y_true, y_pred):
        y_pred = y_pred.detach().requires_grad_(True)
        total = torch.sum(fn(y_true, y_pred))
        (grad,) = torch.autograd.grad(total, y_pred)
        return total.detach(), grad

    return torch.compile(step) if compiled else step


def make_step(backend: str, fn, compiled: bool):
    if backend == "tensorflow":
        import tensorflow as tf

        return step_function(tf, fn, compiled)
    if backend == "jax":
        return jax_step_function(fn, compiled)
    return torch_step_function(fn, compiled)


def to_tensor(backend: str, array):
    """A NumPy array as the backend's tensor (TensorFlow: `tf.constant`, as before)."""
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.constant(array)
    import keras

    return keras.ops.convert_to_tensor(array)


def run_once(step, args) -> float:
    start = time.perf_counter()
    total, grad = step(*args)
    if hasattr(total, "numpy") and not hasattr(grad, "block_until_ready"):
        total.numpy()  # TensorFlow (eager tensors); PyTorch on the CPU has finished already
    else:
        grad.block_until_ready()  # JAX dispatches asynchronously
    return time.perf_counter() - start


# Each case's pairs are timed in this many rounds, each round over every case in turn: a slow
# spell of this shared 2-core machine then touches every case a little instead of one case a
# lot (one case's median read 1.17 in one run and 1.00 in the next with the same code).
ROUNDS = 5


def rotation_times(steps, args, runs: int, warmup: int = 3) -> list[list[float]]:
    """The times of `runs` rotations through `steps` (A B F A B F ...), after `warmup` untimed ones.

    Each step runs right after a different one, as the losses always have: timed back to back
    with itself, the floor step found its input and output still in cache and took 0.38 ms at
    8192 x 128 on this machine, against 0.79 ms in rotation (a loss step is never timed so).
    """
    for _ in range(warmup):
        for step in steps:
            run_once(step, args)
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(runs):
        for step, spent in zip(steps, times, strict=True):
            spent.append(run_once(step, args))
    return times


def bench_losses(args) -> list[dict]:
    import keras
    import numpy as np

    import lossdsl
    from lossdsl.library.counterparts import COUNTERPARTS
    from lossdsl.runtime import loss_class

    backend = args.backend

    sizes = QUICK_SIZES if args.quick else SIZES
    pairs = args.pairs or (5 if args.quick else 25)
    rounds = 1 if args.quick else ROUNDS
    per_round = math.ceil(pairs / rounds)
    cases = {k: v for k, v in COUNTERPARTS.items() if "/" not in k}
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only}
    rows = []
    for b, c in sizes:
        rng = np.random.default_rng(0)
        floor_fn = lambda t, p: keras.ops.mean(p, axis=-1)  # noqa: E731
        timed, floors = [], {}
        for mode, jit in modes_of(args):
            for name, case in cases.items():
                y_true = to_tensor(backend, case.make_true(rng, b, c))
                y_pred = to_tensor(backend, case.make_pred(rng, b, c))
                spec = lossdsl.library.compile(name)
                ours = loss_class(spec, xla=mode in (SPELLED, JAX_SPELLED))(
                    **case.params
                ).call
                reference = getattr(keras.losses, case.keras_name)
                kwargs = dict(case.keras_kwargs)
                theirs = lambda t, p, f=reference, kw=kwargs: f(t, p, **kw)  # noqa: E731
                key = (mode, tuple(y_pred.shape), str(y_pred.dtype))
                if (
                    key not in floors
                ):  # one compiled floor step per mode and shape, timed with each case
                    floors[key] = make_step(backend, floor_fn, jit)
                steps = (
                    make_step(backend, ours, jit),
                    make_step(backend, theirs, jit),
                    floors[key],
                )
                timed.append(
                    {
                        "mode": mode,
                        "loss": name,
                        "steps": steps,
                        "args": (y_true, y_pred),
                    }
                )
        for round_ in range(rounds):
            warmup = 3 if round_ == 0 else 1
            for case in timed:
                ta, tb, tf = rotation_times(
                    case["steps"], case["args"], per_round, warmup
                )
                case.setdefault("ta", []).extend(ta)
                case.setdefault("tb", []).extend(tb)
                case.setdefault("tf", []).extend(tf)
        for case in timed:
            ratio = statistics.median(
                a / b for a, b in zip(case["ta"], case["tb"], strict=True)
            )
            t_ours, t_theirs = (
                statistics.median(case["ta"]),
                statistics.median(case["tb"]),
            )
            floor = statistics.median(case["tf"])
            rows.append(
                {
                    "loss": case["loss"],
                    "batch": b,
                    "classes": c,
                    "mode": case["mode"],
                    "ours_s": t_ours,
                    "keras_s": t_theirs,
                    "ratio": ratio,
                    "floor_s": floor,
                    "ours_over_floor": t_ours / floor,
                }
            )
            label = f"{case['mode']:12s} {b}x{c} {case['loss']:45s}"
            print(
                f"  {label} ours/keras {ratio:5.2f}  ours/floor {t_ours / floor:5.2f}",
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
    # Passes over the whole library, caches cleared before each: the median pass (one pass is
    # a fifth of a second, and a busy spell of the machine moved it by a third; --quick takes 3:
    # its one pass read 33 per second in a clean-clone CI run on a busy machine, 123 quiet).
    passes = []
    for _ in range(3 if args.quick else 7):
        pipeline._front_end_cached.cache_clear()
        start = time.perf_counter()
        for name in names:
            full_compile(name)
        passes.append(time.perf_counter() - start)
    one_pass = statistics.median(passes)
    return {
        "median_ms": 1000 * statistics.median(per_program.values()),
        "max_ms": 1000 * max(per_program.values()),
        "per_program_ms": {k: 1000 * v for k, v in per_program.items()},
        "compiles_per_second": len(names) / one_pass,
        "programs": len(names),
    }


def machine(backend: str = "tensorflow") -> str:
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

    if backend == "jax":
        import jax
        import jaxlib

        framework = f"JAX {jax.__version__} (jaxlib {jaxlib.__version__})"
    elif backend == "torch":
        import torch

        framework = f"PyTorch {torch.__version__}"
    else:
        import tensorflow as tf

        framework = f"TensorFlow {tf.__version__}"
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"{framework}, Keras {keras.__version__} ({keras.backend.backend()} backend)"
    )


def markdown(result: dict) -> str:
    lines = [
        f"Machine: {result['machine']}  ",
        f"Date: {result['date']}  ",
        f"Command: `{result['command']}`",
        "",
    ]
    rows = result["rows"]
    modes = result.get("modes", [m for m, _ in MODES])
    labels = [LABELS.get(m, m) for m in modes]
    for b, c in sorted({(r["batch"], r["classes"]) for r in rows}, reverse=True):
        lines += [
            f"### {b} x {c}",
            "",
            "| loss | "
            + " | ".join(
                [f"ours/Keras {m}" for m in labels]
                + [f"ours/floor {m}" for m in labels]
            )
            + " |",
            "|---|" + "---:|" * (2 * len(modes)),
        ]
        by_loss: dict[str, dict] = {}
        for r in rows:
            if (r["batch"], r["classes"]) == (b, c):
                by_loss.setdefault(r["loss"], {})[r["mode"]] = r
        for name, found in sorted(by_loss.items()):
            ratios = [f"{found[m]['ratio']:.2f}" for m in modes]
            floors = [f"{found[m]['ours_over_floor']:.2f}" for m in modes]
            lines.append(f"| {name} | " + " | ".join(ratios + floors) + " |")
        summary = result["summary"][f"{b}x{c}"]
        means = [f"**{summary[m]['geomean']:.2f}**" for m in modes]
        floor_means = [f"{summary[m]['floor_geomean']:.2f}" for m in modes]
        lines.append("| **geometric mean** | " + " | ".join(means + floor_means) + " |")
        lines.append(
            "| max | "
            + " | ".join(f"{summary[m]['max']:.2f}" for m in modes)
            + " |"
            + " |" * len(modes)
        )
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


def summarize(rows: list[dict], modes=MODES) -> dict:
    summary = {}
    for b, c in {(r["batch"], r["classes"]) for r in rows}:
        per_mode = {}
        for mode, _ in modes:
            sel = [
                r for r in rows if (r["batch"], r["classes"], r["mode"]) == (b, c, mode)
            ]
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
    select_backend(args.backend, argv)
    command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows = bench_losses(args)
    result = {
        "machine": machine(args.backend),
        "date": datetime.date.today().isoformat(),
        "command": command.strip(),
        "backend": args.backend,
        "modes": [m for m, _ in modes_of(args)],
        "rows": rows,
        "summary": summarize(rows, modes_of(args)),
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
