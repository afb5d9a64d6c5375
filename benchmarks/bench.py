"""deltalab vs PyTorch CPU, side by side in the same run (issue 7).

    python benchmarks/bench.py                 # every workload, 1 thread then 2 threads
    python benchmarks/bench.py --quick         # fewer repeats
    python benchmarks/bench.py --only conv_b   # one workload (substring match on the name)
    python benchmarks/bench.py --threads 1     # thread counts to run

Fairness rules (see /work/shared/BENCHMARKING.md):
- Each thread count runs in a fresh subprocess whose OPENBLAS/OMP/MKL thread variables are
  set before NumPy is imported; torch gets ``set_num_threads`` with the same count.
- Each library is timed in its own block (warm-up, then the median of repeats) with a pause
  between blocks, so spinning BLAS/OpenMP threads of one do not slow the other.  A row is
  ``--rounds`` alternating pairs of blocks; its ratio is the median of the per-round ratios.
- Both libraries get the same inputs, parameters and upstream gradient; the outputs and all
  gradients are compared (float32, relative tolerance ~1e-4) before a row is accepted.
- glibc malloc thresholds are fixed (``mallopt``) in the child, for both libraries alike, so
  timings do not depend on what the process freed before.
- ``os.getloadavg()`` and the CPU time other processes used during the row are recorded; a
  row measured while others were busy is re-run (up to ``--retries`` times).

A workload is one small function returning a :class:`Workload`; add new rows to
``WORKLOADS``.  Results go to benchmarks/results.json (gitignored).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# --------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    """One row: ``deltalab()`` and ``torch()`` each return a zero-argument step function.

    A step runs forward + full backward once and returns the arrays to compare
    (output and every gradient), as NumPy arrays, in the same order for both libraries.
    """

    name: str
    description: str
    deltalab: Callable[[], Callable[[], list]]
    torch: Callable[[], Callable[[], list]]
    rtol: float = 1e-4
    repeats: int = 30  # timed calls (median taken); --quick divides by 3
    inner: int = 1  # step calls per timed repeat (for very short steps)
    warmup: int = 5  # untimed calls first; --quick uses at most 3


def _rng(seed=0):
    import numpy as np

    return np.random.default_rng(seed)


def conv_workload(name, n, c, hw, o, k, padding, repeats=30):
    """Forward + backward of conv2d with bias; upstream gradient is a fixed random array."""
    import numpy as np

    rng = _rng(1)
    x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
    w = (rng.standard_normal((o, c, k, k), dtype=np.float32) / np.sqrt(c * k * k)).astype(np.float32)
    b = rng.standard_normal(o, dtype=np.float32)
    out_hw = hw + 2 * padding - k + 1
    g = rng.standard_normal((n, o, out_hw, out_hw), dtype=np.float32)

    def deltalab():
        import deltalab as dl
        import deltalab.functional as F

        xt, wt, bt = (dl.tensor(a, requires_grad=True) for a in (x, w, b))

        def step():
            xt.grad = wt.grad = bt.grad = None
            y = F.conv2d(xt, wt, bt, stride=1, padding=padding)
            y.backward(g)
            return [y.data, xt.grad.data, wt.grad.data, bt.grad.data]

        return step

    def torch_():
        import torch

        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        gt = torch.from_numpy(g)

        def step():
            xt.grad = wt.grad = bt.grad = None
            y = torch.nn.functional.conv2d(xt, wt, bt, stride=1, padding=padding)
            y.backward(gt)
            return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]

        return step

    desc = f"conv2d N={n} {c}x{hw}x{hw} -> {o}@{k}x{k} pad {padding}"
    return Workload(name, desc, deltalab, torch_, repeats=repeats)


def pool_workload(name, kind, shape=(64, 8, 28, 28), kernel=2, stride=2, repeats=50):
    """Forward + backward of max or average pooling on post-ReLU-like data (ties included)."""
    import numpy as np

    rng = _rng(2)
    # ReLU-like inputs: many exact zeros, so the first-maximum rule is exercised.
    x = np.maximum(rng.standard_normal(shape, dtype=np.float32), 0)
    oh = (shape[2] - kernel) // stride + 1
    g = rng.standard_normal(shape[:2] + (oh, oh), dtype=np.float32)

    def deltalab():
        import deltalab as dl
        import deltalab.functional as F

        fn = F.max_pool2d if kind == "max" else F.avg_pool2d
        xt = dl.tensor(x, requires_grad=True)

        def step():
            xt.grad = None
            y = fn(xt, kernel, stride)
            y.backward(g)
            return [y.data, xt.grad.data]

        return step

    def torch_():
        import torch

        fn = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
        xt = torch.tensor(x, requires_grad=True)
        gt = torch.from_numpy(g)

        def step():
            xt.grad = None
            y = fn(xt, kernel, stride)
            y.backward(gt)
            return [y.detach().numpy(), xt.grad.numpy()]

        return step

    desc = f"{kind} pool {kernel}x{kernel}/{stride} on {'x'.join(map(str, shape))}"
    return Workload(name, desc, deltalab, torch_, repeats=repeats)


def recurrent_workload(name, kind, t, batch=32, inputs=32, hidden=128, repeats=10, warmup=3):
    """Forward + BPTT through a whole sequence: deltalab.nn.RNN/LSTM vs torch.nn.RNN/LSTM.

    deltalab has ONE bias per layer (the lecture's); torch has bias_ih + bias_hh, so torch
    gets ours in bias_ih and zeros in bias_hh.  Loss = sum(output * g_out) + sum(h_n * g_h).
    """
    import numpy as np

    rng = _rng(3)
    x = rng.standard_normal((t, batch, inputs), dtype=np.float32)
    gates = 4 if kind == "lstm" else 1
    scale = 1 / np.sqrt(hidden)
    w_ih = (rng.uniform(-scale, scale, (gates * hidden, inputs))).astype(np.float32)
    w_hh = (rng.uniform(-scale, scale, (gates * hidden, hidden))).astype(np.float32)
    bias = (rng.uniform(-scale, scale, gates * hidden)).astype(np.float32)
    g_out = rng.standard_normal((t, batch, hidden), dtype=np.float32)

    def deltalab():
        import deltalab as dl

        cls = dl.nn.LSTM if kind == "lstm" else dl.nn.RNN
        net = cls(inputs, hidden).float()
        net.weight_ih.data[...] = w_ih
        net.weight_hh.data[...] = w_hh
        net.bias.data[...] = bias
        xt = dl.tensor(x, requires_grad=True)
        go = dl.tensor(g_out)

        def step():
            net.zero_grad()
            xt.grad = None
            out, _ = net(xt)
            (out * go).sum().backward()
            return [out.data, xt.grad.data, net.weight_ih.grad.data, net.weight_hh.grad.data,
                    net.bias.grad.data]

        return step

    def torch_():
        import torch

        cls = torch.nn.LSTM if kind == "lstm" else torch.nn.RNN
        net = cls(inputs, hidden)
        with torch.no_grad():
            net.weight_ih_l0.copy_(torch.from_numpy(w_ih))
            net.weight_hh_l0.copy_(torch.from_numpy(w_hh))
            net.bias_ih_l0.copy_(torch.from_numpy(bias))
            net.bias_hh_l0.zero_()
        xt = torch.tensor(x, requires_grad=True)
        go = torch.from_numpy(g_out)

        def step():
            net.zero_grad()
            xt.grad = None
            out, _ = net(xt)
            (out * go).sum().backward()
            return [out.detach().numpy(), xt.grad.numpy(), net.weight_ih_l0.grad.numpy(),
                    net.weight_hh_l0.grad.numpy(), net.bias_ih_l0.grad.numpy()]

        return step

    desc = f"{'LSTM' if kind == 'lstm' else 'Elman RNN'} B={batch} T={t} in {inputs} hidden {hidden}"
    return Workload(name, desc, deltalab, torch_, rtol=1e-3, repeats=repeats, warmup=warmup)


def _has_recurrent():
    try:
        import deltalab

        return hasattr(deltalab.nn, "RNN") and hasattr(deltalab.nn, "LSTM")
    except Exception:
        return False


def workloads():
    rows = [
        conv_workload("conv_a", 64, 1, 28, 8, 5, 2),
        conv_workload("conv_b", 64, 16, 14, 32, 3, 1),
        conv_workload("conv_c", 32, 3, 32, 32, 3, 1),
        pool_workload("max_pool", "max"),
        pool_workload("avg_pool", "avg"),
    ]
    if _has_recurrent():
        rows += [
            recurrent_workload("rnn_t100", "rnn", 100),
            recurrent_workload("rnn_t1000", "rnn", 1000, repeats=7, warmup=2),
            recurrent_workload("lstm_t100", "lstm", 100),
            recurrent_workload("lstm_t1000", "lstm", 1000, repeats=7, warmup=2),
        ]
    # TODO (issue 7): digits CNN end-to-end training row, `deltalab solve` latency row.
    return rows


# --------------------------------------------------------------------------- timing (child)
def _fix_malloc():
    """Keep freed memory in the heap (no trimming, no per-allocation mmap) for both libraries."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
        return True
    except Exception:
        return False


def _busy_jiffies():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle


def _measure(step, repeats, inner, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            step()
        times.append((time.perf_counter() - start) / inner)
    times.sort()
    return times[len(times) // 2], times[len(times) // 10], times


def _compare(a_list, b_list, rtol):
    """Largest error relative to each array's scale (max |b|), over all compared arrays."""
    import numpy as np

    worst = 0.0
    for a, b in zip(a_list, b_list):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        scale = max(np.max(np.abs(b)), 1e-30)
        worst = max(worst, float(np.max(np.abs(a - b)) / scale))
    return worst


def run_row(workload, threads, quick, pause, rounds):
    import numpy as np

    repeats = max(5, workload.repeats // 3) if quick else workload.repeats  # over all rounds
    warmup = min(3, workload.warmup) if quick else workload.warmup
    ticks = os.sysconf("SC_CLK_TCK")
    load_before = os.getloadavg()[0]
    jiffies0, cpu0, wall0 = _busy_jiffies(), os.times(), time.perf_counter()

    # Rounds of (deltalab block, pause, torch block, pause): a neighbour's burst or a clock
    # change then hits one round, and the median over rounds of the per-round ratio
    # shrugs it off.
    dl_step, torch_step = workload.deltalab(), workload.torch()
    dl_values = [np.array(v, copy=True) for v in dl_step()]
    time.sleep(pause)
    torch_values = [np.array(v, copy=True) for v in torch_step()]
    time.sleep(pause)
    per_round = max(3, repeats // rounds)
    dl_medians, torch_medians, ratios, dl_fast, torch_fast = [], [], [], [], []
    for r in range(rounds):
        d_med, d_fast, _ = _measure(dl_step, per_round, workload.inner, warmup if r == 0 else 1)
        time.sleep(pause)
        t_med, t_fast, _ = _measure(torch_step, per_round, workload.inner, warmup if r == 0 else 1)
        time.sleep(pause)
        dl_medians.append(d_med)
        torch_medians.append(t_med)
        ratios.append(d_med / t_med)
        dl_fast.append(d_fast)
        torch_fast.append(t_fast)
    del dl_step, torch_step
    dl_median, torch_median = float(np.median(dl_medians)), float(np.median(torch_medians))
    dl_fast, torch_fast = min(dl_fast), min(torch_fast)

    wall = time.perf_counter() - wall0
    cpu1 = os.times()
    own = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    others = max(0.0, (_busy_jiffies() - jiffies0) / ticks - own) / wall  # cores used by others
    error = _compare(dl_values, torch_values, workload.rtol)
    return {
        "name": workload.name,
        "description": workload.description,
        "threads": threads,
        "deltalab_ms": dl_median * 1e3,
        "torch_ms": torch_median * 1e3,
        "deltalab_p10_ms": dl_fast * 1e3,
        "torch_p10_ms": torch_fast * 1e3,
        "ratio": float(np.median(ratios)),
        "round_ratios": ratios,
        "max_rel_error": error,
        "same_numbers": bool(error <= workload.rtol),
        "repeats": repeats,
        "loadavg_1min": max(load_before, os.getloadavg()[0]),
        "other_cores_busy": others,
    }


def child(args):
    threads = int(args.child)
    malloc_fixed = _fix_malloc()
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    rows = []
    for workload in workloads():
        if args.only and not any(o in workload.name for o in args.only.split(",")):
            continue
        best = None
        for attempt in range(1 + args.retries):
            row = run_row(workload, threads, args.quick, args.pause, 1 if args.quick else args.rounds)
            row["attempts"] = attempt + 1
            if best is None or row["other_cores_busy"] < best["other_cores_busy"]:
                best = row
            if (row["other_cores_busy"] <= args.busy_limit
                    and row["loadavg_1min"] - threads <= args.load_limit):
                break
            print(f"  {workload.name}: others busy {row['other_cores_busy']:.2f} cores, "
                  f"load {row['loadavg_1min']:.2f}; re-running", file=sys.stderr)
            time.sleep(args.pause * 5)
        print(f"  {threads} thread(s) {best['name']:<11} ratio {best['ratio']:.2f}", file=sys.stderr)
        rows.append(best)
    json.dump({"rows": rows, "malloc_fixed": malloc_fixed, "numpy": np.__version__,
               "torch": torch.__version__}, sys.stdout)


# --------------------------------------------------------------------------- driver
def machine_info():
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Flags"):
                value = value.strip()
                if key.strip() == "Flags":
                    value = " ".join(f for f in value.split() if f.startswith(("avx", "fma")))
                info[key.strip()] = value
    except OSError:
        pass
    try:
        import numpy as np

        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        pass
    try:
        import torch

        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "?"
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    except Exception:
        pass
    return info


def print_table(rows, info):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain fallback
        for r in rows:
            print(f"{r['name']:<11} {r['threads']}t  deltalab {r['deltalab_ms']:8.2f} ms  "
                  f"torch {r['torch_ms']:8.2f} ms  ratio {r['ratio']:5.2f}  load {r['loadavg_1min']:.2f}")
        return
    table = Table(title="deltalab / torch, forward + backward, float32 (lower is better)")
    for col in ("workload", "threads", "deltalab ms", "torch ms", "ratio", "max rel err", "load 1m",
                "others busy"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    for r in rows:
        ratio = f"{r['ratio']:.2f}"
        style = "green" if r["ratio"] <= 1.0 else ("yellow" if r["ratio"] <= 1.5 else "red")
        err = f"{r['max_rel_error']:.1e}" + ("" if r["same_numbers"] else " MISMATCH")
        table.add_row(r["name"], str(r["threads"]), f"{r['deltalab_ms']:.2f}", f"{r['torch_ms']:.2f}",
                      f"[{style}]{ratio}[/]", err, f"{r['loadavg_1min']:.2f}",
                      f"{r['other_cores_busy']:.2f}")
    console = Console(width=max(110, Console().width))
    console.print(table)
    console.print(f"{info.get('Model name', '?')}, {info.get('CPU(s)', '?')} CPUs; numpy "
                  f"{info.get('numpy')} ({info.get('numpy_blas')}), torch {info.get('torch')}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", help="comma-separated workload names (substring match)")
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between blocks")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating deltalab/torch blocks per row; ratio = median of round ratios")
    parser.add_argument("--retries", type=int, default=2, help="re-runs of a row measured under load")
    parser.add_argument("--load-limit", type=float, default=1.5,
                        help="re-run a row if the 1-min load average minus our own threads exceeds this")
    parser.add_argument("--busy-limit", type=float, default=0.3,
                        help="re-run a row if other processes used more cores than this")
    parser.add_argument("--output", default=str(HERE / "results.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    info = machine_info()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(threads),
               "--pause", str(args.pause), "--retries", str(args.retries), "--rounds", str(args.rounds),
               "--load-limit", str(args.load_limit), "--busy-limit", str(args.busy_limit)]
        if args.quick:
            cmd.append("--quick")
        if args.only:
            cmd += ["--only", args.only]
        result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
        data = json.loads(result.stdout)
        info.update(numpy=data["numpy"], torch=data["torch"], malloc_fixed=data["malloc_fixed"])
        rows += data["rows"]
    print_table(rows, info)
    Path(args.output).write_text(json.dumps({"machine": info, "rows": rows,
                                             "time": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
