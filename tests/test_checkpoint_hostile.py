"""Crafted checkpoints: every header field, zip member and array of a file from anywhere is checked
before use; `train --resume` refuses with one line naming the file and the field, exit 2, in bounded
time and memory, and writes nothing."""
import io
import json
import os
import re
import resource
import struct
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import deltalab as dl
from deltalab import nn
from deltalab.io import architecture_rules, checkpoint
from deltalab.cli import main
from deltalab.errors import CheckpointError

MLP = """
[model]
type = "mlp"
input_shape = [2]
loss = "half_squared_error"
[[model.layers]]
type = "dense"
units = 2
activation = "relu"
[[model.layers]]
type = "dense"
units = 1
[parameters]
fill = 0.5
[data]
inputs = [1.0, 2.0]
targets = [1.0]
[training]
learning_rate = 0.1
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A problem file and the checkpoint of 2 epochs of `train file` on it."""
    root = tmp_path_factory.mktemp("trained")
    problem = root / "mlp.toml"
    problem.write_text(MLP)
    assert main(["train", "file", str(problem), "--epochs", "2", "--quiet", "--out", str(root / "run")]) == 0
    return problem, root / "run" / "checkpoint.npz"


def members(path):
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    return buffer.getvalue()


def header_of(items):
    return json.loads(np.lib.format.read_array(io.BytesIO(dict(items)["__deltalab__.npy"])).tobytes())


def write(path, items, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in items:
            archive.writestr(name, data)
    return path


def with_header(items, header):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return [(n, npy(np.frombuffer(raw, dtype=np.uint8)) if n == "__deltalab__.npy" else d) for n, d in items]


def resume(problem, path, out, *extra):
    """`train file --resume` in this process: (exit code, stderr)."""
    return main(["train", "file", str(problem), "--epochs", "4", "--quiet", "--resume", str(path), "--out", str(out),
                 *extra])


def assert_refused(capsys, code, out, *fragments):
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert not out.exists()
    return err


def edit(header, path, value):
    target = header
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return header


def first_layer(field, value):
    def change(header):
        for pair in header["architecture"]["kwargs"]["layers"][0]["dict"]:
            if pair[0] == field:
                pair[1] = value
        return header
    return change


HEADER_CASES = [
    ("nested JSON", lambda h: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("version a string", lambda h: edit(h, ["version"], "1"), "header.version: expected a positive integer"),
    ("version a bool", lambda h: edit(h, ["version"], True), "header.version"),
    ("parameters not a list", lambda h: edit(h, ["parameters"], "W1"), "header.parameters: expected a list of names"),
    ("parameters twice", lambda h: edit(h, ["parameters"], ["W1", "W1", "b1", "W2", "b2"]), "'W1' appears twice"),
    ("metadata a list", lambda h: edit(h, ["metadata"], []), "header.metadata: expected a table"),
    ("unknown field", lambda h: edit(h, ["surprise"], 1), "header.surprise: unknown field"),
    ("negative epoch", lambda h: edit(h, ["metadata", "epoch"], -1), "metadata.epoch: expected a whole number"),
    ("huge epoch", lambda h: edit(h, ["metadata", "epoch"], 10**30), "metadata.epoch"),
    ("epoch a string", lambda h: edit(h, ["metadata", "epoch"], "3"), "metadata.epoch"),
    ("history of another length", lambda h: edit(h, ["metadata", "epoch"], 1), "metadata.history"),
    ("history record a string", lambda h: edit(h, ["metadata", "history", 0, "train_loss"], "x"),
     "metadata.history[0].train_loss"),
    ("history record accuracy 2", lambda h: edit(h, ["metadata", "history", 1, "test_accuracy"], 2.0),
     "metadata.history[1].test_accuracy"),
    ("history record unknown key", lambda h: edit(h, ["metadata", "history", 0, "bogus"], 1), "metadata.history[0]"),
    ("optimizer not known", lambda h: edit(h, ["metadata", "config", "optimizer"], 5), "metadata.config.optimizer"),
    ("shuffle state out of range", lambda h: edit(h, ["metadata", "shuffle_rng", "state", "state"], -1),
     "metadata.shuffle_rng"),
    ("negative units", first_layer("units", -2), "architecture.layers[0].units: expected an integer"),
    ("huge units", first_layer("units", 10**9), "architecture.layers[0].units"),
    ("units a string", first_layer("units", "2"), "architecture.layers[0].units"),
    ("unknown activation", first_layer("activation", "bogus"), "architecture.layers[0].activation"),
    ("bias a string", first_layer("bias", "yes"), "architecture.layers[0].bias: expected true or false"),
    ("input shape negative", lambda h: edit(h, ["architecture", "kwargs", "input_shape"], {"tuple": [-2]}),
     "architecture.input_shape[0]"),
    ("a 1e12-parameter Linear", lambda h: edit(h, ["architecture"], {"type": "Linear", "kwargs": {
        "in_features": 10**6, "out_features": 10**6, "bias": True}}), "1,000,001,000,000 parameters"),
    ("unknown module type", lambda h: edit(h, ["architecture"], {"type": "Nope", "kwargs": {}}),
     "architecture.type: unknown module type 'Nope'"),
]


@pytest.mark.parametrize("name, change, fragment", HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_crafted_header_fields_are_refused_with_the_field(trained, tmp_path, capsys, name, change, fragment):
    problem, good = trained
    items = members(good)
    path = write(tmp_path / "crafted.npz", with_header(items, change(header_of(items))))
    code = resume(problem, path, tmp_path / "out")
    assert_refused(capsys, code, tmp_path / "out", "crafted.npz", fragment)


def replace_member(name, data):
    return lambda items: [(n, data if n == name else d) for n, d in items]


def fake_npy(shape, payload=b"\0" * 32):
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % (shape,)
    text += " " * (118 - len(text)) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + payload


MEMBER_CASES = [
    ("non-finite parameter", replace_member("param/W1.npy", npy([[np.nan, 1.0], [1.0, 1.0]])), "non-finite values"),
    ("object array", replace_member("param/W1.npy", npy(np.array([[1, None], [1, 1]], dtype=object))),
     "pickled Python objects"),
    ("complex parameter", replace_member("param/W1.npy", npy(np.ones((2, 2), dtype=complex))), "complex128"),
    ("integer parameter", replace_member("param/W1.npy", npy(np.ones((2, 2), dtype=int))), "not a float array"),
    ("declared 8 TB array", replace_member("param/W1.npy", fake_npy((10**6, 10**6))),
     "needs 8,000,000,000,000 bytes, it holds 32"),
    ("negative shape", replace_member("param/W1.npy", fake_npy((-1, 2))), "impossible shape"),
    ("code in the .npy header", replace_member("param/W1.npy", fake_npy("__import__('os').getcwd()")),
     "not a valid .npy array"),
    ("unlisted member", lambda items: items + [("param/extra.npy", npy(np.ones(2)))], "is not listed in its header"),
    ("duplicate member", lambda items: items + [("param/W1.npy", npy(np.ones((2, 2))))], "appears twice"),
    ("member not an array", lambda items: items + [("notes.txt", b"hello")], "is not a .npy array"),
    ("10,001 members", lambda items: items + [(f"junk/{i}.npy", b"") for i in range(10_001)], "at most 10,000"),
    ("header member of floats", replace_member("__deltalab__.npy", npy(np.ones(5))), "not bytes"),
]


@pytest.mark.parametrize("name, change, fragment", MEMBER_CASES, ids=[c[0] for c in MEMBER_CASES])
def test_crafted_members_are_refused(trained, tmp_path, capsys, name, change, fragment):
    problem, good = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate member written on purpose
        path = write(tmp_path / "crafted.npz", change(members(good)))
    code = resume(problem, path, tmp_path / "out")
    assert_refused(capsys, code, tmp_path / "out", "crafted.npz", fragment)


def patch_member(path, name, method=None, flags=None, size=None):
    """Rewrite one member's compression method, flags or declared size in both zip headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    local = info.header_offset
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    for field, local_at, central_at, fmt in (("flags", 6, 8, "<H"), ("method", 8, 10, "<H"), ("size", 22, 24, "<I")):
        value = {"flags": flags, "method": method, "size": size}[field]
        if value is not None:
            struct.pack_into(fmt, data, local + local_at, value)
            struct.pack_into(fmt, data, central + central_at, value)
    path.write_bytes(bytes(data))


def test_zip_members_are_bounded_before_unpacking(trained, tmp_path):
    _, good = trained
    cases = [
        (dict(method=99), "compression method 99; deltalab reads only stored or deflated"),
        (dict(method=12), "compression method 12"),
        (dict(flags=1), "is encrypted"),
        (dict(size=0xFFFFFFF0), "unpacks to 4,294,967,280 bytes"),
        (dict(size=100_000), "its header says 100,000"),
    ]
    for change, fragment in cases:
        path = tmp_path / "patched.npz"
        path.write_bytes(good.read_bytes())
        patch_member(path, "param/W1.npy", **change)
        with pytest.raises(CheckpointError, match="patched.npz") as info:
            checkpoint.read_checkpoint(path)
        assert fragment in str(info.value), (change, str(info.value))
    # a deflate stream with flipped bytes is a corrupt member, not a zlib traceback
    items = [(n, npy(np.ones((64, 64))) if n == "param/W1.npy" else d) for n, d in members(good)]
    path = write(tmp_path / "deflated.npz", items, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = data.find(b"param/W1.npy") + len(b"param/W1.npy") + 8
    for i in range(start, start + 24):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="deflated.npz: corrupt checkpoint: member 'param/W1.npy'"):
        checkpoint.read_checkpoint(path)


def test_files_that_are_not_checkpoints(tmp_path):
    for name, data, fragment in (
        ("two.npz", b"PK", "not a deltalab checkpoint: not an .npz (zip) file"),
        ("empty.npz", b"", "not a deltalab checkpoint: not an .npz (zip) file"),
        ("pickle.npz", b"\x80\x04K\x01.", "not a deltalab checkpoint: it looks like a Python pickle, which "
                                         "deltalab never loads"),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            checkpoint.read_checkpoint(tmp_path / name)
        assert str(info.value) == f"{tmp_path / name}: {fragment}"
    os.mkfifo(tmp_path / "fifo.npz")  # opened without blocking, refused on its type
    with pytest.raises(CheckpointError, match="fifo.npz: not a regular file"):
        checkpoint.read_checkpoint(tmp_path / "fifo.npz")
    with pytest.raises(CheckpointError, match="not a regular file"):
        checkpoint.read_checkpoint("/dev/zero")
    sparse = tmp_path / "sparse.npz"
    with open(sparse, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(checkpoint.MAX_CHECKPOINT_BYTES + 1)
    with pytest.raises(CheckpointError, match="the largest checkpoint deltalab reads is 536,870,912 bytes"):
        checkpoint.read_checkpoint(sparse)


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_a_zip_bomb_and_a_lying_array_header_through_the_cli(trained, tmp_path):
    """Under a 4 GB address-space cap and a time limit: refused before anything is unpacked."""
    problem, good = trained
    items = members(good)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in items:
            archive.writestr(name, data)
        with archive.open("param/bomb.npy", "w", force_zip64=True) as member:
            for _ in range(600):  # 600 MB of zeros, a few hundred kB on disk
                member.write(bytes(1 << 20))
    lying = write(tmp_path / "lying.npz", replace_member("param/W1.npy", fake_npy((10**6, 10**6)))(items))
    for path, fragment in ((bomb, "unpacks to"), (lying, "needs 8,000,000,000,000 bytes")):
        out = tmp_path / f"out-{path.stem}"
        result = subprocess.run(
            [sys.executable, "-m", "deltalab.cli", "train", "file", str(problem), "--epochs", "4", "--quiet",
             "--resume", str(path), "--out", str(out)],
            capture_output=True, text=True, timeout=60, preexec_fn=limited)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and fragment in result.stderr and "Traceback" not in result.stderr
        assert not out.exists()


def test_non_finite_parameters_and_optimizer_state_are_refused_and_never_saved(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2))
    model[0].weight.data[0, 0] = np.inf
    with pytest.raises(CheckpointError, match="'0.weight' holds non-finite values"):
        dl.save(model, tmp_path / "inf.npz")
    assert not (tmp_path / "inf.npz").exists()
    good = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="'optimizer/0/exp_avg' holds non-finite values"):
        checkpoint.save(good, tmp_path / "state.npz", extra={"optimizer/0/exp_avg": np.full((2, 2), np.nan)})


def test_malformed_optimizer_state_is_refused_by_name(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2))
    optimizer = dl.optim.Adam(model.parameters())
    good = {"optimizer/0/step": np.asarray(3), "optimizer/0/exp_avg": np.zeros((2, 2)),
            "optimizer/0/exp_avg_sq": np.zeros((2, 2))}
    checkpoint.load_optimizer_state(optimizer, good, "c.npz")
    assert optimizer.state[optimizer.params[0]]["step"] == 3
    cases = [
        ({"optimizer/abc/exp_avg": np.zeros((2, 2))}, "expected optimizer/<parameter index>/<state name>"),
        ({"optimizer/00/exp_avg": np.zeros((2, 2))}, "expected optimizer/<parameter index>"),
        ({"optimizer/99999999999999999999/exp_avg": np.zeros(2)}, "expected optimizer/<parameter index>"),
        ({"optimizer/5/exp_avg": np.zeros((2, 2))}, "optimiser state for parameter 5, the optimiser has 2"),
        ({"optimizer/0/bogus": np.zeros((2, 2))}, "Adam keeps no state 'bogus'"),
        (dict(good, **{"optimizer/0/exp_avg": np.zeros(3)}), "expected a float array of shape (2, 2)"),
        (dict(good, **{"optimizer/0/step": np.asarray(-5)}), "expected a whole number of steps"),
        (dict(good, **{"optimizer/0/step": np.asarray(2.5)}), "expected a whole number of steps"),
        (dict(good, **{"optimizer/0/exp_avg_sq": -np.ones((2, 2))}), "holds negative values"),
        ({"optimizer/0/exp_avg": np.zeros((2, 2))}, "lacks exp_avg_sq, step"),
    ]
    for extra, fragment in cases:
        with pytest.raises(CheckpointError, match="c.npz") as info:
            checkpoint.load_optimizer_state(optimizer, extra, "c.npz")
        assert fragment in str(info.value), (extra, str(info.value))


def test_resume_compares_the_whole_architecture_and_names_the_difference(trained, tmp_path, capsys):
    problem, good = trained
    other = tmp_path / "tanh.toml"
    other.write_text(MLP.replace('activation = "relu"', 'activation = "tanh"'))  # the same parameter shapes
    code = resume(other, good, tmp_path / "out")
    assert_refused(capsys, code, tmp_path / "out",
                   "architecture.layers[0].activation is 'relu' in the checkpoint, 'tanh' for the task")


def test_architecture_differences_name_pooling_padding_stride_and_activations():
    def lenet(pool=nn.MaxPool2d, activation=nn.ReLU, padding=1, stride=1):
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=padding, stride=stride), activation(), pool(2),
                             nn.Flatten(), nn.Linear(16, 2))

    config = dl.io.architecture.to_config
    base = config(lenet())
    assert architecture_rules.differences(base, config(lenet())) is None
    assert architecture_rules.differences(config(lenet(pool=nn.AvgPool2d)), base) == \
        ("architecture['2']", "AvgPool2d", "MaxPool2d")
    assert architecture_rules.differences(config(lenet(activation=nn.Tanh)), base) == \
        ("architecture['1']", "Tanh", "ReLU")
    assert architecture_rules.differences(config(lenet(padding=2)), base) == \
        ("architecture['0'].padding", (2, 2), (1, 1))
    assert architecture_rules.differences(config(lenet(stride=2)), base) == \
        ("architecture['0'].stride", (2, 2), (1, 1))


def test_resume_of_a_finished_run_says_so_and_writes_nothing(trained, tmp_path, capsys):
    problem, good = trained
    for epochs in ("2", "1"):
        out = tmp_path / f"out{epochs}"
        code = main(["train", "file", str(problem), "--epochs", epochs, "--quiet", "--resume", str(good),
                     "--out", str(out)])
        assert_refused(capsys, code, out, "already finished epoch 2", f"--epochs {epochs} leaves nothing to train")


def test_a_run_diverging_in_its_first_resumed_epoch_points_at_the_checkpoint_that_exists(trained, tmp_path, capsys):
    problem, good = trained
    out = tmp_path / "out"
    code = resume(problem, good, out, "--lr", "1e200")
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
    kept = err.split("is kept at ")[1].split(";")[0].strip()
    assert kept == str(good) and os.path.exists(kept)
    assert checkpoint.read_checkpoint(kept).metadata["epoch"] == 2


def test_non_finite_parameters_after_a_step_are_divergence(tmp_path, capsys):
    """lr 1e308: the first loss is finite, the step overflows the weights to inf."""
    problem = tmp_path / "mlp.toml"
    problem.write_text(MLP)
    out = tmp_path / "run"
    code = main(["train", "file", str(problem), "--epochs", "3", "--lr", "1e308", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "became nan or inf in the step of epoch 1, batch 1/1" in err and "parameter 'W" in err
    assert "last good checkpoint (the initial weights, before epoch 1)" in err
    saved = checkpoint.read_checkpoint(out / "checkpoint.npz")  # finite, so it loads
    assert saved.metadata["epoch"] == 0


def layered_config(layers, input_shape=(1, 6, 6)):
    """A LayeredNetwork's stored config, built as a checkpoint holds it."""
    from deltalab.models.layered import LayeredNetwork

    return dl.io.architecture.to_config(LayeredNetwork(input_shape, layers))


def test_stored_layered_networks_are_read_and_counted_by_the_layer_registry():
    registered = dl.io.architecture.registered()
    cnn = layered_config([{"type": "conv2d", "out_channels": 2, "kernel_size": [3, 3]},
                          {"type": "max_pool2d", "kernel_size": [2, 2]},
                          {"type": "flatten"}, {"type": "dense", "units": 3}])
    # by hand: conv 2·(1·3·3 + 1) = 20, pool and flatten none, dense on 2·2·2 = 8 inputs: 3·(8 + 1) = 27
    assert architecture_rules.check(cnn, registered) == 47

    def with_field(config, index, key, value):
        config = json.loads(json.dumps(config))
        pairs = config["kwargs"]["layers"][index]["dict"]
        pairs[:] = [pair for pair in pairs if pair[0] != key] + [[key, value]]
        return config

    def refused(config, fragment):
        with pytest.raises(architecture_rules.ArchitectureRuleError, match=re.escape(fragment)):
            architecture_rules.check(config, registered)

    refused(with_field(cnn, 0, "kernel_size", {"tuple": [9, 9]}), "architecture.layers[0]: layer 1 (conv2d): kernel")
    refused(with_field(cnn, 0, "kernel_size", {"tuple": [3]}), "architecture.layers[0].kernel_size: expected two")
    refused(with_field(cnn, 1, "padding", {"tuple": [2, 2]}), "architecture.layers[1].padding: padding [2, 2] must be")
    refused(with_field(cnn, 2, "type", "dense"), "architecture.layers[2].units: expected an integer from 1")
    refused(with_field(with_field(cnn, 2, "type", "dense"), 2, "units", 4),
            "architecture.layers[2]: layer 3 (dense): needs a flat input")
    refused(with_field(with_field(cnn, 3, "type", "max_pool2d"), 3, "kernel_size", {"tuple": [2, 2]}),
            "architecture.layers[3]: layer 4 (max_pool2d): needs a (channels")
    refused(with_field(cnn, 3, "type", "lstm"), "architecture.layers[3].type: expected one of dense, conv2d")
    refused(with_field(cnn, 0, "out_channels", 0), "architecture.layers[0].out_channels: expected an integer from 1")
    # a model built in Python may be wider than a hand-written exercise allows: the checkpoint limits apply
    wide = layered_config([{"type": "dense", "units": 20_000}], input_shape=(3,))
    assert architecture_rules.check(wide, registered) == 20_000 * 4
