"""Hostile and broken input through the command line: one stderr line naming the file and the
field (or the option), exit 2, bounded time and memory, nothing half-written, no traceback.

A valid run whose result is not finite says so in one line and exits 1.  The subprocess runs
carry a 4 GB address-space cap and a time limit, so a regression shows as a failure, not as
a machine out of memory.
"""
import json
import os
import re
import resource
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deltalab import files, limits
from deltalab.cli import main
from deltalab.errors import OutputError

MLP = """title = "{title}"
[model]
type = "mlp"
input_shape = [{features}]
[[model.layers]]
type = "dense"
units = {units}
activation = "relu"
[parameters]
fill = {fill}
[data]
inputs = {inputs}
targets = {targets}
[training]
learning_rate = {rate}
steps = {steps}
"""


def mlp(title="t", features=2, units=2, fill=0.5, inputs="[1, 2]", targets="[1, 0]", rate=0.1, steps=1):
    return MLP.format(title=title, features=features, units=units, fill=fill, inputs=inputs, targets=targets,
                      rate=rate, steps=steps)


def cnn(channels=1, side=5, out=2, kernel=3, padding=0, stride=1, pool=""):
    return f"""[model]
type = "cnn"
input_shape = [{channels}, {side}, {side}]
[[model.layers]]
type = "conv2d"
out_channels = {out}
kernel_size = {kernel}
padding = {padding}
stride = {stride}
{pool}
[parameters]
fill = 0.1
[data]
inputs = 1.0
"""


def rnn(kind="rnn", hidden=2, inputs="[[1], [2]]", targets="[[1], [0]]", steps=1):
    return f"""[model]
type = "{kind}"
input_size = 1
hidden_size = {hidden}
output_size = 1
[parameters]
fill = 0.1
[data]
inputs = {inputs}
targets = {targets}
[training]
learning_rate = 0.1
steps = {steps}
"""


def equations(equation='L = "0.5*(w*x - y)**2"', parameters="w = 0.5", loss=True):
    return f"""[model]
type = "equations"
{'loss = "L"' if loss else ''}
[equations]
{equation}
[parameters]
{parameters}
[data]
x = 2.0
y = 1.0
[training]
learning_rate = 0.1
"""


def cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def run_capped(*argv, timeout=60):
    """The CLI in a subprocess under a 4 GB cap: (exit code, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent / "src"))
    result = subprocess.run([sys.executable, "-m", "deltalab.cli", *map(str, argv)], capture_output=True,
                            text=True, timeout=timeout, preexec_fn=cap_memory, env=env, stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout, result.stderr


def run_in_process(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code, err, *fragments, exit_code=2):
    lines = err.strip().splitlines()
    assert code == exit_code, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write(tmp_path, text, name="problem.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ special files (item 2)
def test_a_fifo_is_refused_before_it_is_opened(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    for argv in (["solve", fifo], ["summary", fifo], ["train", "file", fifo, "--out", tmp_path / "run"]):
        start = time.perf_counter()
        code, _, err = run_capped(*argv, timeout=30)
        assert_refused(code, err, str(fifo), "FIFO", "regular files")
        assert time.perf_counter() - start < 30


def test_a_device_is_never_read(tmp_path):
    code, _, err = run_capped("solve", "/dev/zero", timeout=30)
    assert_refused(code, err, "/dev/zero", "character device")


def test_a_directory_and_a_symlink_to_a_fifo(tmp_path, capsys):
    assert_refused(*run_in_process(capsys, "solve", tmp_path)[::2], str(tmp_path), "is a directory")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link.toml").symlink_to(tmp_path / "pipe")
    assert_refused(*run_in_process(capsys, "summary", tmp_path / "link.toml")[::2], "FIFO")


def test_a_large_file_is_refused_from_its_size_and_never_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "big.toml"
    with open(path, "wb") as f:
        f.truncate(50 * limits.FILE_BYTES)  # sparse: 50 MB that take no disk
    reads = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(Exception, match=r"has 50,000,000 bytes; the largest is 1,000,000 bytes"):
        files.read_regular_file(path, limits.FILE_BYTES)
    assert reads == []


def test_a_file_that_grows_is_read_at_most_to_the_limit_plus_one(tmp_path):
    path = tmp_path / "grows.toml"
    path.write_bytes(b"x" * 10)
    assert files.read_regular_file(path, 10) == b"x" * 10
    path.write_bytes(b"x" * 11)
    with pytest.raises(Exception, match="the largest is 10 bytes"):
        files.read_regular_file(path, 10)


def test_text_that_is_not_utf8_names_the_line(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'title = "ok"\ndescription = "caf\xe9"\n')
    assert_refused(*run_in_process(capsys, "solve", path)[::2], f"{path}:2: not UTF-8")


# ------------------------------------------------------------------ limits (item 1)
@pytest.mark.parametrize("text, field, largest", [
    (mlp(units=10**9, targets="1"), "model.layers[0].units", "10,000"),
    (mlp(features=10**6, inputs="1.0"), "model.input_shape[0]", "10,000"),
    (mlp(steps=10**9), "training.steps", "1,000"),
    (cnn(channels=20_000), "model.input_shape[0]", "10,000"),
    (cnn(out=10**8), "model.layers[0].out_channels", "10,000"),
    (cnn(kernel=10**6), "model.layers[0].kernel_size", "1,000"),
    (cnn(padding=10**7), "model.layers[0].padding", "1,000"),
    (cnn(stride=10**12), "model.layers[0].stride", "1,000"),
    (cnn(channels=100, side=10, out=100, kernel=9), "model", "250,000"),  # 100·100·9·9 + 100 parameters
    (cnn(channels=1, side=2000, out=1, kernel=1), "model.input_shape", "250,000"),
    (rnn(hidden=10**6), "model.hidden_size", "10,000"),
    (rnn("lstm", hidden=5000), "model", "250,000"),
    (rnn(inputs="[" + ", ".join(["[1]"] * 1001) + "]", targets="[" + ", ".join(["[1]"] * 1001) + "]"),
     "data.inputs", "1,000"),
    (mlp(features=400, units=400, inputs="[" + ", ".join(["1"] * 400) + "]", targets="[" + ", ".join(["1"] * 400) + "]",
         steps=10), "training.steps", "1,000,000"),
])
def test_every_size_has_a_limit_checked_before_any_allocation(tmp_path, capsys, text, field, largest):
    path = write(tmp_path, text)
    for command in ("solve", "summary"):
        start = time.perf_counter()
        line = assert_refused(*run_in_process(capsys, command, path)[::2], f"{path}: {field}:", f"the largest is {largest}")
        assert time.perf_counter() - start < 2, line


@pytest.mark.parametrize("text, field", [
    (mlp(units=2**70, targets="1"), "model.layers[0].units"),
    (mlp(inputs="[99999999999999999999999, 1]"), "data.inputs[0]"),
    (mlp(fill=2**64), "parameters.fill"),
    (cnn(stride=2**70), "model.layers[0].stride"),
    (equations(parameters="w = 18446744073709551616"), "parameters.w"),
])
def test_integers_beyond_64_bits_are_refused(tmp_path, capsys, text, field):
    path = write(tmp_path, text)
    assert_refused(*run_in_process(capsys, "solve", path)[::2], f"{field}:", "beyond 64 bits",
                   f"the largest is {limits.INTEGER:,}")


def test_deep_nesting_and_too_many_numbers(tmp_path, capsys):
    deep = write(tmp_path, mlp(inputs="[" * 5000 + "1" + "]" * 5000), "deep.toml")
    assert_refused(*run_in_process(capsys, "solve", deep)[::2], "nested too deeply", "the largest depth is 8")
    nine = write(tmp_path, mlp(inputs="[" * 9 + "1" + "]" * 9), "nine.toml")
    assert_refused(*run_in_process(capsys, "solve", nine)[::2], "data.inputs[0][0][0][0][0][0][0][0]:",
                   "nested 9 deep")
    many = write(tmp_path, mlp(inputs="[" + ",".join(["1"] * 100_001) + "]"), "many.toml")
    assert_refused(*run_in_process(capsys, "summary", many)[::2], "data.inputs[", "more than 100,000 numbers")


def test_finite_differences_sample_a_large_equations_parameter(tmp_path, capsys):
    entries = ", ".join(["0.5"] * 20_000)
    path = write(tmp_path, equations('L = "sum(w*w)"', f"w = [{entries}]"))
    start = time.perf_counter()
    code, out, err = run_in_process(capsys, "solve", path, "--format", "json")
    assert (code, err) == (0, "")
    assert time.perf_counter() - start < 20
    check = next(c for c in json.loads(out)["check"] if "finite" in c["method"])
    assert check["passed"] and check["entries"] == limits.finite_difference_entries(0) <= 4000


# ------------------------------------------------------------------ names and fields (item 7)
def test_names_that_normalise_alike_are_a_duplicate(tmp_path, capsys):
    path = write(tmp_path, equations(parameters='w = 0.5\n"ｗ" = 0.25'))
    assert_refused(*run_in_process(capsys, "solve", path)[::2], "parameters.ｗ:", "same name 'w'", "NFKC")


def test_booleans_in_numbers_and_a_non_string_description(tmp_path, capsys):
    path = write(tmp_path, mlp(inputs="[1, true]"))
    assert_refused(*run_in_process(capsys, "solve", path)[::2], f"{path}: data.inputs[1]: expected a number, got true")
    path = write(tmp_path, "description = 5\n" + mlp())
    assert_refused(*run_in_process(capsys, "solve", path)[::2], "description: expected a string, got 5")
    path = write(tmp_path, 'description = ["a"]\n' + equations())
    assert_refused(*run_in_process(capsys, "solve", path)[::2], "description: expected a string, got a list")


# ------------------------------------------------------------------ summary refuses what solve refuses
@pytest.mark.parametrize("text", [
    mlp(targets="[1, 0, 1]"),  # the network's output has 2 values
    cnn(pool='[[model.layers]]\ntype = "max_pool2d"\nkernel_size = 2\npadding = 2'),  # more than half the kernel
    mlp(units=10**5, targets="1"),
])
def test_summary_refuses_exactly_what_solve_refuses(tmp_path, capsys, text):
    path = write(tmp_path, text)
    solve = run_in_process(capsys, "solve", path)
    summary = run_in_process(capsys, "summary", path)
    assert solve[0] == summary[0] == 2 and solve[2] == summary[2], (solve, summary)
    assert str(path) in solve[2]


# ------------------------------------------------------------------ numerics
def test_a_diverging_step_is_one_line_and_exit_1(tmp_path, capsys):
    path = write(tmp_path, mlp(inputs="[1e200, 1e200]"))
    code, out, err = run_in_process(capsys, "solve", path)
    assert_refused(code, err, str(path), "the error E became inf at step 1", exit_code=1)
    path = write(tmp_path, mlp(inputs="[1e10, 1e10]", rate=1e300), "rate.toml")
    assert_refused(*run_in_process(capsys, "solve", path)[::2], "became -inf at step 1", exit_code=1)


def test_a_forward_pass_that_overflows_prints_a_warning_line(tmp_path, capsys):
    path = write(tmp_path, equations('z = "exp(w*x)"', "w = 1000.0", loss=False))
    code, out, err = run_in_process(capsys, "solve", path)
    assert_refused(code, err, "deltalab: warning:", str(path), "z is not finite", exit_code=1)
    assert "inf" in out


def test_numpy_warnings_never_reach_stderr(tmp_path):
    path = write(tmp_path, mlp(inputs="[1e200, 1e200]", targets="[0, 0]"))
    code, _, err = run_capped("solve", path)
    assert_refused(code, err, "became inf", exit_code=1)
    assert "RuntimeWarning" not in err


def test_a_check_that_fails_says_so_on_stderr(tmp_path, capsys):
    path = write(tmp_path, equations('L = "w*x"', "w = 1e300"))
    assert_refused(*run_in_process(capsys, "solve", path)[::2], "deltalab: check failed: central finite differences",
                   exit_code=1)


# ------------------------------------------------------------------ output hygiene (item 6)
def test_control_characters_from_a_file_are_shown_escaped(tmp_path, capsys):
    path = write(tmp_path, mlp(title="[/bold] \\u001b[31mred\\u0007 \\u202eevil"))
    for command in (["solve", path], ["summary", path], ["solve", path, "--format", "markdown"]):
        code, out, err = run_in_process(capsys, *command)
        assert code == 0 and err == ""
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "\\x1b" in out and "\\x07" in out and "\\u202eevil" in out and "/bold" in out


def test_an_escape_sequence_in_a_file_name_stays_on_one_escaped_line(tmp_path, capsys):
    path = tmp_path / "a\x1b]0;title\x07\nb.toml"
    code, _, err = run_in_process(capsys, "solve", path)
    line = assert_refused(code, err, "no such file")
    assert "\x1b" not in line and "\\x1b]0;title\\x07\\x0ab.toml" in line


def test_huge_numbers_are_written_in_scientific_notation(tmp_path, capsys):
    path = write(tmp_path, mlp(inputs="[1e100, 1e100]", fill=0.5, targets="[1, 0]").replace(
        "targets = [1, 0]\n", "").replace("[training]\nlearning_rate = 0.1\nsteps = 1\n", ""))
    code, out, err = run_in_process(capsys, "solve", path)
    assert code == 0, err
    assert "1.0000e+100" in out
    assert not re.search(r"\d{20}", out)


# ------------------------------------------------------------------ writing (item 5)
def example_args(output):
    return ["solve", "--example", "mlp-relu-exam-network", "--format", "markdown", "-o", output]


def test_output_onto_a_fifo_a_symlink_or_a_directory_is_refused(tmp_path, capsys):
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    target = tmp_path / "target.md"
    target.write_text("keep")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    for output, kind in ((fifo, "FIFO"), (link, "symbolic link"), (tmp_path, "directory")):
        assert_refused(*run_in_process(capsys, *example_args(output))[::2], str(output), kind)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.path.islink(link) and target.read_text() == "keep"


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_output_onto_a_device_is_refused_and_the_device_survives(tmp_path, capsys):
    device = tmp_path / "null"  # a private /dev/null: a regression replaces this one, not the real one
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert_refused(*run_in_process(capsys, *example_args(device))[::2], str(device), "character device")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_output_into_a_missing_directory_or_with_a_long_name(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "report.md"
    assert_refused(*run_in_process(capsys, *example_args(missing))[::2], "does not exist")
    assert not (tmp_path / "no").exists()
    long_name = tmp_path / ("a" * 300)
    assert_refused(*run_in_process(capsys, *example_args(long_name))[::2], "too long")
    assert_refused(*run_in_process(capsys, *example_args(""))[::2], "the output file name is empty")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_into_a_read_only_directory(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert_refused(*run_in_process(capsys, *example_args(locked / "r.md"))[::2], "Permission denied")


def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path, capsys, monkeypatch):
    output = tmp_path / "report.md"
    output.write_text("old")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert_refused(*run_in_process(capsys, *example_args(output))[::2], str(output), "No space left on device")
    monkeypatch.undo()
    assert output.read_text() == "old" and os.listdir(tmp_path) == ["report.md"]


def test_a_new_file_gets_the_umask_mode_and_an_old_one_keeps_its_own(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        output = tmp_path / "report.md"
        assert run_in_process(capsys, *example_args(output))[0] == 0
        assert stat.S_IMODE(os.stat(output).st_mode) == 0o644
        os.chmod(output, 0o640)
        assert run_in_process(capsys, *example_args(output))[0] == 0
        assert stat.S_IMODE(os.stat(output).st_mode) == 0o640
    finally:
        os.umask(old)


def test_temporaries_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    # a writer killed mid-write: run one in a subprocess and kill -9 it while it writes
    script = ("import sys, time; from deltalab import files\n"
              "files.atomic_write(sys.argv[1], lambda f: (f.write(b'half'), f.flush(), time.sleep(60)))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent / "src"))
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "a.md")], env=env)
    deadline = time.time() + 30
    while not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] and time.time() < deadline:
        time.sleep(0.05)
    writer.kill()
    writer.wait()
    left = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(left) == 1 and re.fullmatch(r"\.a\.md\.deltalab-\d+-\w+\.tmp", left[0])
    old = time.time() - 2 * files.STALE_AFTER_DEAD_WRITER
    os.utime(tmp_path / left[0], (old, old))
    (tmp_path / ".mine.tmp").write_text("not ours")  # another program's temporary: left alone
    files.write_text_atomic(tmp_path / "b.md", "next write")
    assert sorted(os.listdir(tmp_path)) == [".mine.tmp", "b.md"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    live = tmp_path / f".x.md.deltalab-{os.getppid()}-abcd1234.tmp"
    live.write_text("being written")
    files.write_text_atomic(tmp_path / "y.md", "y")
    assert live.exists()


def test_train_out_refuses_a_symlinked_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.npz").symlink_to(tmp_path / "elsewhere.npz")
    code, _, err = run_in_process(capsys, "train", "shift-register", "--epochs", "1", "--quiet", "--out", run_dir)
    assert_refused(code, err, "checkpoint.npz", "symbolic link")
    assert not (tmp_path / "elsewhere.npz").exists()


# ------------------------------------------------------------------ command-line options
@pytest.mark.parametrize("argv, fragments", [
    (["train", "shift-register", "--seed", "-1"], ["--seed", "from 0 to"]),
    (["train", "shift-register", "--seed", str(2**70)], ["--seed"]),
    (["train", "shift-register", "--epochs", str(2**70)], ["--epochs", "the largest is 10,000"]),
    (["train", "shift-register", "--batch-size", str(2**70)], ["--batch-size", "the largest is"]),
    (["train", "shift-register", "--limit", str(2**70)], ["--limit", "the largest is"]),
    (["train", "shift-register", "--seed", "abc"], ["train: argument --seed: invalid int value: 'abc'"]),
    (["solve", "--decimals", "x", "--example", "mlp-relu-exam-network"], ["solve: argument --decimals"]),
    (["solve", "--format", "pdf", "--example", "mlp-relu-exam-network"], ["argument --format"]),
    (["nope"], ["invalid choice: 'nope'"]),
])
def test_bad_options_are_one_line_naming_the_option(tmp_path, capsys, argv, fragments):
    try:
        code = main([*argv, "--out", str(tmp_path / "run")] if argv[0] == "train" else argv)
    except SystemExit as exc:  # argparse exits itself
        code = exc.code
    assert_refused(code, capsys.readouterr().err, *fragments)
    assert not (tmp_path / "run").exists()


def test_the_bad_option_line_is_the_only_output_in_a_subprocess():
    code, out, err = run_capped("train", "shift-register", "--seed", "-1", timeout=60)
    assert_refused(code, err, "--seed")
    assert out == ""


def test_output_error_is_an_oserror_too():
    assert issubclass(OutputError, OSError)


def test_reading_a_file_while_another_thread_replaces_it_by_a_fifo_does_not_hang(tmp_path):
    path = tmp_path / "race.toml"
    path.write_text("x")
    done = threading.Event()

    def swap():
        while not done.is_set():
            try:
                os.unlink(path)
                os.mkfifo(path)
                os.unlink(path)
                path.write_text("x")
            except OSError:
                pass

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        for _ in range(200):
            try:
                files.read_regular_file(path, 10)
            except Exception:
                pass
    finally:
        done.set()
        thread.join()
    assert time.perf_counter() - start < 10
