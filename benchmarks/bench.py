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

Each row also gets its share of the matrix-product peak (its product FLOPs / time / a float32
1024³ product timed in the same child), and the output ends with a scaling table (time at 2
threads / time at 1 thread, per library).

A workload is one small function returning a :class:`Workload` (with ``flops`` if it has
matrix products); add new rows in ``workloads()``.  Results go to benchmarks/results.json
(gitignored).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# Some of these machines pin OpenBLAS to its AVX2 "Haswell" kernels (a safety pin for old
# OpenBLAS builds, which the workplace asks us to keep in tests and CI).  It slows current
# NumPy while torch's MKL/oneDNN still use AVX-512, so by default the benchmark children run
# without the pin, and each row records which OpenBLAS kernels actually ran.
OPENBLAS_PIN_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


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
    # A row that is not "one step, timed many times" (end-to-end training, process latency):
    # ``run(threads, quick, pause, rounds) -> dict`` returns the timing part of the row itself.
    run: Callable | None = None
    goal: str = ""
    # multiply-add FLOPs (2 per multiply-add) of the step's matrix products, forward + backward;
    # 0 for rows without products (pooling, batch norm).  The share of the matrix-product peak
    # is flops / time / peak, with the peak measured in the same child (see ``_matmul_peak``).
    flops: float = 0.0


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
    return Workload(name, desc, deltalab, torch_, repeats=repeats, flops=conv_flops(n, c, out_hw, o, k))


def conv_flops(n, c, out_hw, o, k):
    """Forward, weight gradient and input gradient: three products of N·Ho·Wo × C·k·k × O."""
    return 3 * 2 * n * out_hw * out_hw * c * k * k * o


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
    """Forward + BPTT through a whole sequence: deltalab.nn.RNN/LSTM/GRU vs torch's.

    Both get the same bias_ih and, for the Elman RNN and the LSTM, zeros in bias_hh (the
    lecture's one bias); the GRU gets a random bias_hh too, since b_hn sits inside r ∘ (W_hn h +
    b_hn) and is not a second copy of bias_ih.  Loss = sum(output * g_out).
    """
    import numpy as np

    rng = _rng(3)
    x = rng.standard_normal((t, batch, inputs), dtype=np.float32)
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    scale = 1 / np.sqrt(hidden)
    w_ih = (rng.uniform(-scale, scale, (gates * hidden, inputs))).astype(np.float32)
    w_hh = (rng.uniform(-scale, scale, (gates * hidden, hidden))).astype(np.float32)
    bias = (rng.uniform(-scale, scale, gates * hidden)).astype(np.float32)
    bias_hh = (rng.uniform(-scale, scale, gates * hidden)).astype(np.float32) if kind == "gru" else \
        np.zeros(gates * hidden, dtype=np.float32)
    g_out = rng.standard_normal((t, batch, hidden), dtype=np.float32)

    def deltalab():
        import deltalab as dl

        cls = {"lstm": dl.nn.LSTM, "gru": dl.nn.GRU, "rnn": dl.nn.RNN}[kind]
        net = cls(inputs, hidden).float()
        net.weight_ih_l0.data[...] = w_ih
        net.weight_hh_l0.data[...] = w_hh
        net.bias_ih_l0.data[...] = bias
        net.bias_hh_l0.data[...] = bias_hh
        xt = dl.tensor(x, requires_grad=True)
        go = dl.tensor(g_out)

        def step():
            net.zero_grad()
            xt.grad = None
            out, _ = net(xt)
            (out * go).sum().backward()
            return [out.data, xt.grad.data, net.weight_ih_l0.grad.data, net.weight_hh_l0.grad.data,
                    net.bias_ih_l0.grad.data, net.bias_hh_l0.grad.data]

        return step

    def torch_():
        import torch

        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
        net = cls(inputs, hidden)
        with torch.no_grad():
            net.weight_ih_l0.copy_(torch.from_numpy(w_ih))
            net.weight_hh_l0.copy_(torch.from_numpy(w_hh))
            net.bias_ih_l0.copy_(torch.from_numpy(bias))
            net.bias_hh_l0.copy_(torch.from_numpy(bias_hh))
        xt = torch.tensor(x, requires_grad=True)
        go = torch.from_numpy(g_out)

        def step():
            net.zero_grad()
            xt.grad = None
            out, _ = net(xt)
            (out * go).sum().backward()
            return [out.detach().numpy(), xt.grad.numpy(), net.weight_ih_l0.grad.numpy(),
                    net.weight_hh_l0.grad.numpy(), net.bias_ih_l0.grad.numpy(), net.bias_hh_l0.grad.numpy()]

        return step

    label = {"lstm": "LSTM", "gru": "GRU", "rnn": "Elman RNN"}[kind]
    desc = f"{label} B={batch} T={t} in {inputs} hidden {hidden}"
    # input projection, step products, and in the backward dW_ih, dW_hh, dx, dh: 3 × forward
    flops = 3 * 2 * t * batch * gates * hidden * (inputs + hidden)
    return Workload(name, desc, deltalab, torch_, rtol=1e-3, repeats=repeats, warmup=warmup, flops=flops)


def batchnorm_workload(name, shape=(64, 16, 28, 28), repeats=30):
    """BatchNorm2d in training mode (batch statistics, running stats updated), forward + backward."""
    import numpy as np

    rng = _rng(4)
    x = (rng.standard_normal(shape, dtype=np.float32) * 2 + 0.5).astype(np.float32)
    weight = rng.uniform(0.5, 1.5, shape[1]).astype(np.float32)
    bias = rng.standard_normal(shape[1], dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)

    def deltalab():
        import deltalab as dl

        bn = dl.nn.BatchNorm2d(shape[1]).float().train()
        bn.weight.data[...] = weight
        bn.bias.data[...] = bias
        xt = dl.tensor(x, requires_grad=True)

        def step():
            bn.zero_grad()
            xt.grad = None
            y = bn(xt)
            y.backward(g)
            return [y.data, xt.grad.data, bn.weight.grad.data, bn.bias.grad.data]

        return step

    def torch_():
        import torch

        bn = torch.nn.BatchNorm2d(shape[1]).train()
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(weight))
            bn.bias.copy_(torch.from_numpy(bias))
        xt = torch.tensor(x, requires_grad=True)
        gt = torch.from_numpy(g)

        def step():
            bn.zero_grad()
            xt.grad = None
            y = bn(xt)
            y.backward(gt)
            return [y.detach().numpy(), xt.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy()]

        return step

    desc = f"BatchNorm2d training mode on {'x'.join(map(str, shape))}"
    return Workload(name, desc, deltalab, torch_, rtol=1e-3, repeats=repeats)


def cifar_step_workload(name="cifar_step", batch=32, classes=10, lr=0.01, repeats=20):
    """One SGD training step of a small CIFAR-sized CNN: forward, cross-entropy, backward, step.

    32×3×32×32 → conv 16@3×3 pad 1 → ReLU → max-pool 2 → conv 32@3×3 pad 1 → ReLU → max-pool 2
    → flatten → linear 10.  Same initial weights (deltalab's under ``manual_seed(0)``, copied
    with ``to_torch``), same batch and labels every step.  Each library's step changes its own
    weights, so the compared numbers are the first step's loss, logits and parameter gradients
    (taken before any timed step).
    """
    import numpy as np

    rng = _rng(5)
    x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, classes, batch)

    def build():
        import deltalab as dl
        from deltalab.random import manual_seed

        manual_seed(0)
        return dl.nn.Sequential(
            dl.nn.Conv2d(3, 16, 3, padding=1), dl.nn.ReLU(), dl.nn.MaxPool2d(2),
            dl.nn.Conv2d(16, 32, 3, padding=1), dl.nn.ReLU(), dl.nn.MaxPool2d(2),
            dl.nn.Flatten(), dl.nn.Linear(32 * 8 * 8, classes),
        ).float()

    def deltalab():
        import deltalab as dl

        net = build()
        optimizer = dl.optim.SGD(net.parameters(), lr=lr)
        loss_fn = dl.nn.CrossEntropyLoss()
        xt, yt = dl.tensor(x), dl.tensor(y)

        def step():
            optimizer.zero_grad()
            logits = net(xt)
            loss = loss_fn(logits, yt)
            loss.backward()
            grads = [p.grad.data.copy() for p in net.parameters()]
            optimizer.step()
            return [np.array(loss.item()), logits.data, *grads]

        return step

    def torch_():
        import torch

        from deltalab.io.interop import to_torch

        net = to_torch(build())
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            optimizer.zero_grad()
            logits = net(xt)
            loss = loss_fn(logits, yt)
            loss.backward()
            grads = [p.grad.numpy().copy() for p in net.parameters()]
            optimizer.step()
            return [np.array(loss.item()), logits.detach().numpy(), *grads]

        return step

    flops = conv_flops(batch, 3, 32, 16, 3) + conv_flops(batch, 16, 16, 32, 3) + 3 * 2 * batch * 32 * 8 * 8 * classes
    desc = (f"SGD step, N={batch} 3x32x32: conv16@3x3-relu-pool-conv32@3x3-relu-pool-linear{classes}, "
            "cross-entropy")
    return Workload(name, desc, deltalab, torch_, rtol=1e-3, repeats=repeats, flops=flops)





# ------------------------------------------------------- end to end: the digits CNN (training issue)
def digits_cnn_workload(name="digits_cnn", seed=0):
    """``deltalab train digits-cnn`` with the task's defaults, and the same training in torch.

    Same initial weights (the task's builder under ``manual_seed(seed)``, copied with
    ``to_torch``), same batch order (one permutation per epoch from
    ``numpy.random.default_rng(seed)``, drawn once and fed to both — the order ``train`` itself
    draws), Adam with the task's lr and the same cosine rate per epoch (``learning_rate``),
    float32, mean cross-entropy.  deltalab runs the task's own pieces (model, ``run_batch``
    loss, ``make_optimizer``); the timed part is the whole training plus one test evaluation,
    without the CLI's checkpoints, progress bar and reports.
    """

    def setup():
        import numpy as np

        from deltalab import training

        config = training.make_config("digits-cnn", seed=seed)
        task = training.get_task("digits-cnn")
        data = task.load_data(np.float32)
        rng = np.random.default_rng(seed)
        orders = [rng.permutation(len(data.train_y)) for _ in range(config.epochs)]
        rates = [training.learning_rate(config, epoch) for epoch in range(1, config.epochs + 1)]
        return config, task, data, orders, rates

    def deltalab_run(config, task, data, orders, rates):
        import numpy as np

        from deltalab import training
        from deltalab.random import manual_seed

        manual_seed(config.seed)
        model = task.build_model().to(np.float32)
        optimizer = training.make_optimizer(config.optimizer, model.parameters(), config.lr, config.momentum)
        x, y, bs = data.train_x, data.train_y, config.batch_size
        start = time.perf_counter()
        for order, rate in zip(orders, rates):
            optimizer.lr = rate
            model.train()
            for i in range(0, len(order), bs):
                index = order[i : i + bs]
                _, loss = task.run_batch(model, x[index], y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        _, accuracy, _ = training.evaluate(task, model, data.test_x, data.test_y)
        seconds = time.perf_counter() - start
        return seconds, float(accuracy), float(loss.item())

    def torch_run(config, task, data, orders, rates):
        import numpy as np
        import torch

        from deltalab.io.interop import to_torch
        from deltalab.random import manual_seed

        manual_seed(config.seed)
        net = to_torch(task.build_model().to(np.float32))  # the same initial weights
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
        test_x = torch.from_numpy(data.test_x)
        torch_orders = [torch.from_numpy(order) for order in orders]
        bs = config.batch_size
        start = time.perf_counter()
        for order, rate in zip(torch_orders, rates):
            for group in optimizer.param_groups:
                group["lr"] = rate
            net.train()
            for i in range(0, len(order), bs):
                index = order[i : i + bs]
                loss = torch.nn.functional.cross_entropy(net(x[index]), y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        net.eval()
        with torch.no_grad():
            logits = net(test_x).numpy()
        seconds = time.perf_counter() - start
        return seconds, float((logits.argmax(axis=1) == data.test_y).mean()), float(loss.item())

    def run(threads, quick, pause, rounds):
        pieces = setup()
        dl, tr = [], []
        for _ in range(1 if quick else min(rounds, 2)):
            dl.append(deltalab_run(*pieces))
            time.sleep(pause)
            tr.append(torch_run(*pieces))
            time.sleep(pause)
        dl_s, tr_s = [r[0] for r in dl], [r[0] for r in tr]
        ratios = [d / t for d, t in zip(dl_s, tr_s)]
        dl_acc, tr_acc = dl[-1][1], tr[-1][1]
        config = pieces[0]
        return {
            "deltalab_ms": float(sorted(dl_s)[len(dl_s) // 2] * 1e3) if len(dl_s) % 2 else float(sum(dl_s) / len(dl_s) * 1e3),
            "torch_ms": float(sorted(tr_s)[len(tr_s) // 2] * 1e3) if len(tr_s) % 2 else float(sum(tr_s) / len(tr_s) * 1e3),
            "ratio": float(sorted(ratios)[len(ratios) // 2]) if len(ratios) % 2 else float(sum(ratios) / len(ratios)),
            "round_ratios": ratios,
            "round_seconds": {"deltalab": dl_s, "torch": tr_s},
            "deltalab_test_accuracy": dl_acc,
            "torch_test_accuracy": tr_acc,
            "round_accuracies": {"deltalab": [r[1] for r in dl], "torch": [r[1] for r in tr]},
            "final_batch_loss": {"deltalab": dl[-1][2], "torch": tr[-1][2]},
            # "same numbers" here means equal accuracy: both >= 97 % or within 0.5 points
            "max_rel_error": abs(dl_acc - tr_acc),
            "same_numbers": bool((dl_acc >= 0.97 and tr_acc >= 0.97) or abs(dl_acc - tr_acc) <= 0.005),
            "repeats": len(ratios),
            "config": {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
                       "optimizer": config.optimizer, "schedule": config.schedule, "seed": config.seed},
        }

    desc = "deltalab train digits-cnn (defaults: 20 epochs, batch 16, Adam 0.003, cosine), wall time"
    return Workload(name, desc, None, None, run=run, goal="≤ 1.3 at equal accuracy")


# ------------------------------------------------------- latency: deltalab solve (process start to exit)
def solve_latency_workload(name="solve_latency", example="rnn-many-to-many-identity", runs=12, warmup=2):
    """``deltalab solve --example EXAMPLE`` as a subprocess, output to /dev/null: median wall time.

    Timed with ``python -m deltalab.cli`` of this interpreter (``shutil.which("deltalab")``
    may be a pyenv bash shim adding 0.1-0.2 s) and, when it exists, with the console script
    next to the interpreter.  Also checks that torch is never imported on that path.

    The headline (``deltalab_ms``) is the start with deltalab's bytecode cached, the user's
    latency: Python writes the ``.pyc`` files on a package's first run and reads them from then
    on, and ``pip install`` of a wheel compiles them at install.  Only a shell that sets
    ``PYTHONDONTWRITEBYTECODE`` (as this project's do) with an editable install compiles every
    deltalab module at each start; that time is kept as ``no_bytecode_ms`` (printed next to the
    headline; ``dont_write_bytecode`` says whether this shell made it so -- without the variable
    both variants read cached bytecode).  Before 2026-12 the headline was the no-bytecode time.
    """

    def time_commands(variants, n):
        """{name: sorted seconds}; the variants are interleaved run by run, so a slow patch of
        the shared machine hits all of them alike."""
        times = {name: [] for name in variants}
        for i in range(warmup + n):
            for name, (cmd, env) in variants.items():
                start = time.perf_counter()
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
                if i >= warmup:
                    times[name].append(time.perf_counter() - start)
        return {name: sorted(values) for name, values in times.items()}

    def run(threads, quick, pause, rounds):
        import statistics
        import tempfile

        n = 5 if quick else runs
        args = ["solve", "--example", example]
        module_cmd = [sys.executable, "-m", "deltalab.cli", *args]
        # With PYTHONDONTWRITEBYTECODE set (as in this project's shells) an editable install
        # compiles every deltalab module at each start; a normal install has .pyc files.  Time
        # that case too, with the bytecode cached under a temporary PYTHONPYCACHEPREFIX (so
        # nothing is written into src/).
        with tempfile.TemporaryDirectory(prefix="deltalab-pyc-") as prefix:
            cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            cached_env["PYTHONPYCACHEPREFIX"] = prefix
            variants = {"module": (module_cmd, None), "bytecode_cached": (module_cmd, cached_env)}
            script = Path(sys.executable).parent / "deltalab"
            if script.is_file():
                with open(script, "rb") as f:
                    shim = f.read(64).startswith(b"#!/usr/bin/env bash")
                if not shim:
                    variants["entry_point"] = ([str(script), *args], None)
            times = time_commands(variants, n)
        ms = {name: statistics.median(values) * 1e3 for name, values in times.items()}
        headline = times["bytecode_cached"]
        row = {"deltalab_ms": ms["bytecode_cached"], "torch_ms": None, "ratio": None,
               "deltalab_p10_ms": headline[len(headline) // 10] * 1e3,
               "command": " ".join(["python", "-m", "deltalab.cli", *args]), "repeats": n,
               "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
               "bytecode_cached_ms": ms["bytecode_cached"], "no_bytecode_ms": ms["module"],
               "times_ms": {name: [t * 1e3 for t in values] for name, values in times.items()}}
        if "entry_point" in ms:
            row.update(entry_point_ms=ms["entry_point"], entry_point=str(script))
        # is torch ever imported on that path?
        probe = ("import runpy, sys; sys.argv = ['deltalab', *sys.argv[1:]]\n"
                 "try:\n    runpy.run_module('deltalab.cli', run_name='__main__')\n"
                 "except SystemExit:\n    pass\n"
                 "sys.stderr.write('TORCH_LOADED=%d\\n' % ('torch' in sys.modules))")
        out = subprocess.run([sys.executable, "-c", probe, *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        imported = subprocess.run([sys.executable, "-X", "importtime", "-m", "deltalab.cli", *args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
        torch_lines = [line for line in imported.splitlines() if "torch" in line.split("|")[-1]]
        row["torch_imported"] = "TORCH_LOADED=1" in out.stderr or bool(torch_lines)
        row["torch_check"] = "TORCH_LOADED=0" in out.stderr and not torch_lines
        row["max_rel_error"] = 0.0
        row["same_numbers"] = not row["torch_imported"]
        return row

    desc = (f"deltalab solve --example {example}: process start to exit (median of {runs}, output to /dev/null, "
            "bytecode cached)")
    return Workload(name, desc, None, None, run=run, goal="≤ 150 ms (issue 18)")


def _has_recurrent():
    try:
        import deltalab

        return all(hasattr(deltalab.nn, name) for name in ("RNN", "LSTM", "GRU"))
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
            recurrent_workload("gru_t100", "gru", 100),
            recurrent_workload("gru_t1000", "gru", 1000, repeats=7, warmup=2),
        ]
    rows += [batchnorm_workload("batch_norm"), cifar_step_workload(),
             digits_cnn_workload(), solve_latency_workload()]
    return rows


# ------------------------------------------------------- scaling table (issue 18, item 5): --scaling
SCALING_CONV_BATCHES = (8, 16, 32, 64, 128, 256)
SCALING_RNN_STEPS = (100, 300, 1000, 3000, 10000)


@dataclass
class ScalingWorkload(Workload):
    """A scaling-table row: a workload and its amount of work, ``size`` ``unit``s of ``family``."""

    unit: str = ""
    size: int = 0
    family: str = ""


def scaling_workloads():
    """conv b at batch 8 … 256 and the Elman RNN (B=32, 32 → 128) at T = 100 … 10,000: how each
    library's time grows with the work.  Each workload's ``unit`` (images, steps) and ``size``
    say what "per unit of work" means; the repeats shrink as the work grows (a row stays
    seconds long)."""
    rows = []
    for n in SCALING_CONV_BATCHES:
        row = conv_workload(f"scale_conv_b_n{n}", n, 16, 14, 32, 3, 1, repeats=max(9, min(30, 30 * 64 // n)))
        rows.append(ScalingWorkload(**vars(row), unit="image", size=n, family="conv b 16×14×14 → 32@3×3"))
    if _has_recurrent():
        for t in SCALING_RNN_STEPS:
            row = recurrent_workload(f"scale_rnn_t{t}", "rnn", t, repeats=max(3, min(15, 1500 // t)),
                                     warmup=1 if t >= 1000 else 3)
            rows.append(ScalingWorkload(**vars(row), unit="step", size=t, family="Elman RNN B=32 32 → 128"))
    return rows


def scaling_work_rows(rows):
    """The --scaling rows with time per unit of work (µs per image or per step) for each library,
    and that per-unit time relative to the smallest size of its family at the same thread count
    (1.00 = time grows in proportion to the work; below 1: bigger problems use the machine better)."""
    out, first = [], {}
    for r in rows:
        if "unit" not in r:
            continue
        key = (r["family"], r["threads"])
        per_unit = {lib: r[f"{lib}_ms"] * 1e3 / r["size"] if r.get(f"{lib}_ms") else None
                    for lib in ("deltalab", "torch")}
        base = first.setdefault(key, per_unit)
        growth = {lib: per_unit[lib] / base[lib] if per_unit[lib] and base[lib] else None for lib in per_unit}
        out.append({"name": r["name"], "family": r["family"], "threads": r["threads"], "size": r["size"],
                    "unit": r["unit"], "deltalab_ms": r["deltalab_ms"], "torch_ms": r.get("torch_ms"),
                    "deltalab_us_per_unit": per_unit["deltalab"], "torch_us_per_unit": per_unit["torch"],
                    "deltalab_growth": growth["deltalab"], "torch_growth": growth["torch"],
                    "ratio": r.get("ratio"), "max_rel_error": r.get("max_rel_error"),
                    "same_numbers": r.get("same_numbers"), "loadavg_1min": r["loadavg_1min"],
                    "other_cores_busy": r["other_cores_busy"]})
    return out


def print_scaling_work(rows):
    """The --scaling table: time, time per unit of work and its growth, per library."""
    work = scaling_work_rows(rows)
    print("scaling with the work: time, µs per unit (image / step), per-unit time relative to the smallest size")
    print(f"{'workload':<18} {'thr':>3} {'size':>6} {'deltalab ms':>12} {'torch ms':>10} {'dl µs/unit':>11} "
          f"{'torch µs/unit':>13} {'dl growth':>9} {'torch growth':>12} {'ratio':>6} {'err':>8} {'load':>5} "
          f"{'others':>6}")
    for w in work:
        print(f"{w['name']:<18} {w['threads']:>3} {w['size']:>6} {w['deltalab_ms']:>12.2f} "
              f"{_fmt(w['torch_ms'], '.2f'):>10} {_fmt(w['deltalab_us_per_unit'], '.1f'):>11} "
              f"{_fmt(w['torch_us_per_unit'], '.1f'):>13} {_fmt(w['deltalab_growth'], '.2f'):>9} "
              f"{_fmt(w['torch_growth'], '.2f'):>12} {_fmt(w['ratio'], '.2f'):>6} "
              f"{_fmt(w['max_rel_error'], '.0e'):>8}{'' if w['same_numbers'] else ' MISMATCH'} "
              f"{w['loadavg_1min']:>5.2f} {w['other_cores_busy']:>6.2f}")
    return work


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


def _matmul_peak(size=1024, repeats=7):
    """GFLOP/s of a size³ float32 matrix product in NumPy and in torch at this thread count.

    The "peak" a row's share is taken of is the faster of the two (they are within ~10 % here);
    each library is timed in its own block with a pause between, as the rows are.
    """
    import numpy as np
    import torch

    a = _rng(9).standard_normal((size, size), dtype=np.float32)
    b = _rng(10).standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    tout = torch.empty_like(ta)
    flops = 2.0 * size**3
    median_np = _measure(lambda: np.matmul(a, b, out=out), repeats, 1, 2)[0]
    time.sleep(0.5)
    median_torch = _measure(lambda: torch.matmul(ta, tb, out=tout), repeats, 1, 2)[0]
    time.sleep(0.5)
    numpy_gflops, torch_gflops = flops / median_np / 1e9, flops / median_torch / 1e9
    return {"size": size, "numpy_gflops": numpy_gflops, "torch_gflops": torch_gflops,
            "peak_gflops": max(numpy_gflops, torch_gflops), "loadavg_1min": os.getloadavg()[0]}


def _add_peak_share(row, flops, peak_gflops):
    """Share of the matrix-product peak each library reaches on the row's product FLOPs."""
    if not flops or row.get("torch_ms") is None:
        row.update(product_mflop=None, deltalab_peak_share=None, torch_peak_share=None)
        return
    peak_ms = flops / (peak_gflops * 1e9) * 1e3
    row.update(product_mflop=flops / 1e6, peak_ms=peak_ms,
               deltalab_peak_share=peak_ms / row["deltalab_ms"], torch_peak_share=peak_ms / row["torch_ms"])


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


def _measure_block(step, repeats, inner, warmup):
    """``_measure`` of a step, in this process or in a library process; also the process CPU
    time per timed step."""
    if isinstance(step, _RemoteStep):
        return step.measure(repeats, inner, warmup)
    for _ in range(warmup):
        step()
    cpu = time.process_time()
    median, fast, times = _measure(step, repeats, inner, 0)
    return median, fast, times, (time.process_time() - cpu) / (repeats * inner)


# --------------------------------------------------------------- --process-per-library
# With --process-per-library each library's step rows run in a process of their own (spawned
# once per thread count, same environment, malloc settings and thread count), driven block by
# block from the benchmark child, so the blocks still alternate in one run but neither
# library's threads, allocator state or thread pools share a process with the other's.
_LIBRARY_PROCESSES = {}


def _library_cpu():
    """CPU seconds the --process-per-library processes have used so far (0 without them)."""
    total = 0.0
    for process in _LIBRARY_PROCESSES.values():
        try:
            fields = Path(f"/proc/{process.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


class _RemoteStep:
    """A step of ``workload`` built and timed in a library process."""

    def __init__(self, conn, name):
        self.conn, self.name = conn, name

    def __call__(self):  # the first step: its values, for the comparison
        self.conn.send(("first", self.name))
        return self.conn.recv()

    def measure(self, repeats, inner, warmup):
        self.conn.send(("measure", repeats, inner, warmup))
        return self.conn.recv()


class _LibraryProcess:
    def __init__(self, library, threads, scaling):
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # never fork a process with OpenMP threads
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_library_server, args=(theirs, library, threads, scaling), daemon=True)
        self.process.start()

    def block(self, name):
        return _RemoteStep(self.conn, name)

    def close(self):
        self.conn.send(("stop",))
        self.process.join(10)


def _library_server(conn, library, threads, scaling):
    """Build and time one library's steps on request (the other end of ``_LibraryProcess``)."""
    _fix_malloc()
    import numpy as np

    if library == "torch":
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    table = {w.name: w for w in (scaling_workloads() if scaling else workloads())}
    step, built = None, None
    while True:
        message = conn.recv()
        if message[0] == "stop":
            return
        if message[0] == "first":
            if built != message[1]:
                step, built = None, message[1]
                step = getattr(table[built], library)()  # Workload.deltalab / Workload.torch
            conn.send([np.array(v, copy=True) for v in step()])
        else:
            conn.send(_measure_block(step, *message[1:]))


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


def _step_rows(workload, quick, pause, rounds):
    """Timing of a step workload: rounds of (deltalab block, pause, torch block, pause)."""
    import numpy as np

    repeats = max(5, workload.repeats // 3) if quick else workload.repeats  # over all rounds
    warmup = min(3, workload.warmup) if quick else workload.warmup
    # A neighbour's burst or a clock change then hits one round, and the median over rounds
    # of the per-round ratio shrugs it off.
    if _LIBRARY_PROCESSES:  # --process-per-library: each library's step in its own process
        dl_step, torch_step = (_LIBRARY_PROCESSES[lib].block(workload.name) for lib in ("deltalab", "torch"))
    else:
        dl_step, torch_step = workload.deltalab(), workload.torch()
    dl_values = [np.array(v, copy=True) for v in dl_step()]
    time.sleep(pause)
    torch_values = [np.array(v, copy=True) for v in torch_step()]
    time.sleep(pause)
    per_round = max(3, repeats // rounds)
    dl_medians, torch_medians, ratios, dl_fast, torch_fast = [], [], [], [], []
    dl_cpu, torch_cpu = [], []
    for r in range(rounds):
        d_med, d_fast, _, d_cpu = _measure_block(dl_step, per_round, workload.inner, warmup if r == 0 else 1)
        time.sleep(pause)
        t_med, t_fast, _, t_cpu = _measure_block(torch_step, per_round, workload.inner, warmup if r == 0 else 1)
        time.sleep(pause)
        dl_medians.append(d_med)
        torch_medians.append(t_med)
        ratios.append(d_med / t_med)
        dl_fast.append(d_fast)
        torch_fast.append(t_fast)
        dl_cpu.append(d_cpu)
        torch_cpu.append(t_cpu)
    del dl_step, torch_step
    error = _compare(dl_values, torch_values, workload.rtol)
    return {
        # CPU time of the timing process per timed step (all its threads: spinning BLAS/OpenMP
        # threads show up here as CPU well above the wall time)
        "deltalab_cpu_ms": float(np.median(dl_cpu)) * 1e3,
        "torch_cpu_ms": float(np.median(torch_cpu)) * 1e3,
        "deltalab_ms": float(np.median(dl_medians)) * 1e3,
        "torch_ms": float(np.median(torch_medians)) * 1e3,
        "deltalab_p10_ms": min(dl_fast) * 1e3,
        "torch_p10_ms": min(torch_fast) * 1e3,
        "ratio": float(np.median(ratios)),
        "round_ratios": ratios,
        "max_rel_error": error,
        "same_numbers": bool(error <= workload.rtol),
        "repeats": repeats,
    }


def run_row(workload, threads, quick, pause, rounds):
    ticks = os.sysconf("SC_CLK_TCK")
    load_before = os.getloadavg()[0]
    jiffies0, cpu0, wall0 = _busy_jiffies(), os.times(), time.perf_counter()
    library0 = _library_cpu()
    if workload.run is not None:
        timing = workload.run(threads, quick, pause, rounds)
    else:
        timing = _step_rows(workload, quick, pause, rounds)
    wall = time.perf_counter() - wall0
    cpu1 = os.times()
    # our own CPU time includes waited-for children (the latency row's subprocesses)
    own = sum(cpu1[:4]) - sum(cpu0[:4]) + _library_cpu() - library0  # and the --process-per-library ones
    others = max(0.0, (_busy_jiffies() - jiffies0) / ticks - own) / wall  # cores used by others
    row = {"name": workload.name, "description": workload.description, "threads": threads}
    row.update(timing)
    row.update(loadavg_1min=max(load_before, os.getloadavg()[0]), other_cores_busy=others,
               goal=workload.goal, wall_s=wall)
    return row


def _dependency_versions():
    """deltalab's default dependencies as installed (the benchmark measures the default install)."""
    from importlib import metadata

    versions = {}
    for name in ("deltalab", "numpy", "numba", "threadpoolctl"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def child(args):
    threads = int(args.child)
    malloc_fixed = _fix_malloc()
    import numpy as np
    import torch

    from deltalab.fast.threads import blas_kernels  # which OpenBLAS kernels NumPy loaded

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    peak = _matmul_peak()
    print(f"  {threads} thread(s) float32 1024³ matmul: NumPy {peak['numpy_gflops']:.0f} GFLOP/s, "
          f"torch {peak['torch_gflops']:.0f} GFLOP/s", file=sys.stderr)
    if args.process_per_library:
        for library in ("deltalab", "torch"):
            _LIBRARY_PROCESSES[library] = _LibraryProcess(library, threads, args.scaling)
    rows = []
    for workload in (scaling_workloads() if args.scaling else workloads()):
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
        _add_peak_share(best, workload.flops, peak["peak_gflops"])
        print(f"  {threads} thread(s) {best['name']:<13} ratio {_fmt(best['ratio'], '.2f')}  "
              f"deltalab {best['deltalab_ms']:.1f} ms  {_check_text(best)}  "
              f"others busy {best['other_cores_busy']:.2f}", file=sys.stderr)
        if isinstance(workload, ScalingWorkload):  # the --scaling rows' amount of work
            best.update(unit=workload.unit, size=workload.size, family=workload.family)
        rows.append(best)
    for process in _LIBRARY_PROCESSES.values():
        process.close()
    json.dump({"rows": rows, "matmul_peak": peak, "process_per_library": bool(args.process_per_library), "dependencies": _dependency_versions(),
               "malloc_fixed": malloc_fixed, "numpy": np.__version__,
               "torch": torch.__version__, "openblas_kernels": blas_kernels(),
               "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}, sys.stdout)


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


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def _check_text(r):
    """The "same numbers" column: max rel err, the test accuracies, or the torch-import check."""
    if "deltalab_test_accuracy" in r:
        text = f"acc {r['deltalab_test_accuracy']:.2%} / {r['torch_test_accuracy']:.2%}"
    elif "torch_imported" in r:
        text = "torch imported!" if r["torch_imported"] else "no torch import"
        if r.get("no_bytecode_ms") is not None:  # the headline is the cached-bytecode start
            text += f"; no .pyc {r['no_bytecode_ms']:.0f} ms" + ("" if r.get("dont_write_bytecode") else " (cached too)")
        else:  # a results file from before: the headline was the no-bytecode start
            text += f"; .pyc cached {r['bytecode_cached_ms']:.0f} ms"
        if r.get("entry_point_ms") is not None:
            text += f"; script {r['entry_point_ms']:.0f} ms"
        return text
    else:
        text = f"{r['max_rel_error']:.1e}"
    return text + ("" if r["same_numbers"] else " MISMATCH")


def _share_text(r):
    """"deltalab % / torch %" of the matrix-product peak, or "—" for rows without products."""
    if r.get("deltalab_peak_share") is None:
        return "—"
    return f"{r['deltalab_peak_share']:.0%} / {r['torch_peak_share']:.0%}"


def scaling_rows(rows, few=1, many=2):
    """Per workload timed at both thread counts: time at ``many`` threads / time at ``few``.

    Below 1 the extra threads pay; torch's column is what "scales like torch" is measured
    against.  Rows without a torch side (latency) get deltalab's only.
    """
    by_key = {(r["name"], r["threads"]): r for r in rows}
    out = []
    for r in rows:
        if r["threads"] != few or (r["name"], many) not in by_key:
            continue
        other = by_key[(r["name"], many)]
        torch_scaling = (other["torch_ms"] / r["torch_ms"]) if r.get("torch_ms") and other.get("torch_ms") else None
        out.append({"name": r["name"], "threads": [few, many],
                    "deltalab": other["deltalab_ms"] / r["deltalab_ms"], "torch": torch_scaling,
                    "ratio": [r["ratio"], other["ratio"]],
                    "loadavg_1min": [r["loadavg_1min"], other["loadavg_1min"]]})
    return out


def print_table(rows, info):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain fallback
        for r in rows:
            print(f"{r['name']:<13} {r['threads']}t  deltalab {r['deltalab_ms']:9.2f} ms  "
                  f"torch {_fmt(r['torch_ms'], '9.2f')} ms  ratio {_fmt(r['ratio'], '5.2f')}  "
                  f"peak {_share_text(r)}  "
                  f"{_check_text(r)}  load {r['loadavg_1min']:.2f}  others {r['other_cores_busy']:.2f}")
        for s in scaling_rows(rows):
            print(f"scaling {s['name']:<13} 2t/1t deltalab {s['deltalab']:.2f}  torch {_fmt(s['torch'], '.2f')}")
        return
    table = Table(title="deltalab / torch, forward + backward, float32 (lower is better)")
    for col in ("workload", "threads", "deltalab ms", "torch ms", "ratio", "peak share dl / torch",
                "max rel err / check", "load 1m", "others busy"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    for r in rows:
        if r["ratio"] is None:
            ratio = "—"
        else:
            style = "green" if r["ratio"] <= 1.0 else ("yellow" if r["ratio"] <= 1.5 else "red")
            ratio = f"[{style}]{r['ratio']:.2f}[/]"
        table.add_row(r["name"], str(r["threads"]), f"{r['deltalab_ms']:.2f}", _fmt(r["torch_ms"], ".2f"),
                      ratio, _share_text(r), _check_text(r), f"{r['loadavg_1min']:.2f}",
                      f"{r['other_cores_busy']:.2f}")
    console = Console(width=max(120, Console().width))
    console.print(table)
    scaling = scaling_rows(rows)
    if scaling:
        table = Table(title="scaling: time at 2 threads / time at 1 thread (below 1: the second thread pays)")
        for col in ("workload", "deltalab 2t/1t", "torch 2t/1t", "ratio 1t", "ratio 2t"):
            table.add_column(col, justify="left" if col == "workload" else "right")
        for s in scaling:
            table.add_row(s["name"], f"{s['deltalab']:.2f}", _fmt(s["torch"], ".2f"),
                          _fmt(s["ratio"][0], ".2f"), _fmt(s["ratio"][1], ".2f"))
        console.print(table)
    for threads, peak in sorted(info.get("matmul_peak", {}).items()):
        console.print(f"{threads} thread(s): float32 1024³ matmul NumPy {peak['numpy_gflops']:.0f}, torch "
                      f"{peak['torch_gflops']:.0f} GFLOP/s (peak share = product FLOPs / time / the faster)")
    console.print(f"{info.get('Model name', '?')}, {info.get('CPU(s)', '?')} CPUs; numpy "
                  f"{info.get('numpy')} ({info.get('numpy_blas')}, {info.get('openblas_kernels')} "
                  f"kernels), torch {info.get('torch')} ({info.get('torch_cpu_capability')})")
    deps = info.get("dependencies", {})
    console.print("default dependencies: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in deps.items()))
    if info.get("process_per_library"):
        console.print("each library's step rows timed in a process of its own (--process-per-library)")
    pin = info.get("openblas_pin_in_environment")
    if pin:
        kept = "kept" if info.get("openblas_pin_kept") else "removed for the timed runs"
        console.print(f"OpenBLAS pin in the environment: {pin}, {kept}")


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
    parser.add_argument("--keep-openblas-pin", action="store_true",
                        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment "
                             "(default: the timed children run without them)")
    parser.add_argument("--scaling", action="store_true",
                        help="the scaling table instead of the main rows: conv b at batch 8 … 256 and the Elman "
                             "RNN at T = 100 … 10,000, time and time per unit of work (--only filters it too)")
    parser.add_argument("--process-per-library", action="store_true",
                        help="time each library's step rows in a process of its own (blocks still alternate "
                             "in one run): no thread pool, allocator or OpenMP state shared between them")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    info = machine_info()
    info["matmul_peak"] = {}
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
        if not args.keep_openblas_pin:
            for var in OPENBLAS_PIN_VARS:
                env.pop(var, None)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(threads),
               "--pause", str(args.pause), "--retries", str(args.retries), "--rounds", str(args.rounds),
               "--load-limit", str(args.load_limit), "--busy-limit", str(args.busy_limit)]
        if args.quick:
            cmd.append("--quick")
        if args.scaling:
            cmd.append("--scaling")
        if args.process_per_library:
            cmd.append("--process-per-library")
        if args.only:
            cmd += ["--only", args.only]
        result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
        data = json.loads(result.stdout)
        info.update(numpy=data["numpy"], torch=data["torch"], malloc_fixed=data["malloc_fixed"],
                    openblas_kernels=data["openblas_kernels"],
                    torch_cpu_capability=data["torch_cpu_capability"],
                    openblas_pin_in_environment={v: os.environ[v] for v in OPENBLAS_PIN_VARS if v in os.environ},
                    openblas_pin_kept=args.keep_openblas_pin)
        info["matmul_peak"][threads] = data["matmul_peak"]
        info["process_per_library"] = data["process_per_library"]
        info["dependencies"] = data["dependencies"]
        rows += data["rows"]
    print_table(rows, info)
    extra = {"scaling_with_work": print_scaling_work(rows)} if args.scaling else {}
    Path(args.output).write_text(json.dumps({"machine": info, "rows": rows, "scaling": scaling_rows(rows), **extra,
                                             "time": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
