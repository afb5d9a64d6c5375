"""Checkpoints: bit-exact round trips, clear errors for broken files, atomic writes, no pickle."""
import io
import json
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import deltalab as dl
from deltalab.io import architecture, checkpoint
from deltalab.errors import CheckpointError

nn = dl.nn


def lenet(dtype="float64"):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 1), stride=(1, 2), padding=(1, 0), bias=False), nn.Tanh(), nn.AvgPool2d(2, stride=1),
        nn.Flatten(), nn.Sequential(OrderedDict(hidden=nn.Linear(6 * 2 * 1, 7), act=nn.Sigmoid())),
        nn.Linear(7, 3), nn.LogSoftmax(dim=1),
    ).to(dtype)


def stored_arrays(path):
    """The arrays as the zip holds them, read with NumPy's .npy reader (not through deltalab)."""
    with zipfile.ZipFile(path) as archive:
        return {
            name[: -len(".npy")]: np.lib.format.read_array(io.BytesIO(archive.read(name)), allow_pickle=False)
            for name in archive.namelist()
        }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_is_bit_exact(tmp_path, dtype):
    model = lenet(dtype)
    path = tmp_path / "model.npz"
    dl.save(model, path)
    raw = stored_arrays(path)
    for name, p in model.named_parameters():
        assert raw[f"param/{name}"].dtype == np.dtype(dtype)
        assert raw[f"param/{name}"].tobytes() == p.data.tobytes()
    header = json.loads(raw["__deltalab__"].tobytes().decode("utf-8"))
    assert header["format"] == "deltalab-checkpoint" and header["version"] == 1
    assert header["architecture"]["type"] == "Sequential"
    loaded = dl.load(path)
    assert repr(loaded) == repr(model)
    for (name, p), (other, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert name == other and q.dtype == np.dtype(dtype) and q.data.tobytes() == p.data.tobytes()
    x = dl.tensor(np.random.default_rng(0).random((2, 1, 6, 6)).astype(dtype))
    assert model(x).numpy().tobytes() == loaded(x).numpy().tobytes()


def test_load_into_copies_and_loading_leaves_the_seeded_generator_alone(tmp_path):
    model = lenet()
    dl.save(model, tmp_path / "m.npz")
    dl.manual_seed(5)
    expected = np.random.default_rng(5).uniform(size=3)
    dl.load(tmp_path / "m.npz")
    from deltalab.random import generator

    np.testing.assert_array_equal(generator().uniform(size=3), expected)
    target = lenet()
    dl.load_into(target, tmp_path / "m.npz")
    for p, q in zip(model.parameters(), target.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_wrong_architecture_is_refused_with_both_descriptions(tmp_path):
    dl.save(lenet(), tmp_path / "m.npz")
    with pytest.raises(CheckpointError) as info:
        dl.load_into(nn.Sequential(nn.Linear(3, 2)), tmp_path / "m.npz")
    message = str(info.value)
    assert str(tmp_path / "m.npz") in message and "architecture mismatch" in message
    assert "Conv2d(in_channels=1" in message and "Linear(in_features=3, out_features=2" in message


def test_mismatched_parameter_shapes_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    dl.save(nn.Sequential(nn.Linear(3, 2)), path)
    arrays = stored_arrays(path)
    arrays["param/0.weight"] = np.zeros((5, 5))
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=r"parameter '0.weight' has shape \(2, 3\) in the model, \(5, 5\)"):
        dl.load(path)


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        dl.load(tmp_path / "absent.npz")
    text = tmp_path / "notes.npz"
    text.write_text("these are not weights")
    with pytest.raises(CheckpointError, match=r"notes.npz: not a deltalab checkpoint: not an .npz"):
        dl.load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, weight=np.ones(3))
    with pytest.raises(CheckpointError, match="plain.npz: not a deltalab checkpoint: the .npz has no '__deltalab__'"):
        dl.load(plain)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "cut.npz"
    dl.save(lenet(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.npz: corrupt or truncated checkpoint"):
        dl.load(path)


def test_corrupt_bytes_are_reported(tmp_path):
    path = tmp_path / "flipped.npz"
    model = nn.Sequential(nn.Linear(40, 40))
    dl.save(model, path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("param/0.weight.npy")
    middle = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    data[middle] ^= 0xFF  # one flipped byte inside the weights: the zip's CRC-32 catches it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.npz: corrupt"):
        dl.load(path)


def test_corrupt_header_and_newer_version(tmp_path):
    path = tmp_path / "m.npz"
    dl.save(nn.Sequential(nn.ReLU()), path)
    arrays = stored_arrays(path)
    np.savez(path, **dict(arrays, __deltalab__=np.frombuffer(b"{not json", dtype=np.uint8)))
    with pytest.raises(CheckpointError, match="architecture JSON does not parse"):
        dl.load(path)
    header = json.loads(arrays["__deltalab__"].tobytes())
    header["version"] = 99
    np.savez(path, **dict(arrays, __deltalab__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)))
    with pytest.raises(CheckpointError, match="format version 99 is newer"):
        dl.load(path)


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    dl.save(nn.Sequential(nn.Linear(2, 1)), path)
    arrays = stored_arrays(path)
    arrays["param/0.bias"] = np.array([{"payload": "pickled"}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="evil.npz: refused: the file holds pickled Python objects"):
        dl.load(path)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    dl.save(nn.Sequential(nn.Linear(30, 30)), path)
    before = path.read_bytes()
    real_savez = np.savez

    def half_then_crash(file, **arrays):
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", half_then_crash)
    with pytest.raises(OSError, match="No space left"):
        dl.save(nn.Sequential(nn.Linear(30, 30)), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    dl.load(path)


def test_a_crash_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    dl.save(nn.Sequential(nn.Linear(3, 3)), path)
    before = path.read_bytes()

    def power_cut(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(checkpoint.os, "fsync", power_cut)
    with pytest.raises(OSError):
        dl.save(nn.Sequential(nn.Linear(3, 3)), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


def test_optimizer_state_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    opt = dl.optim.Adam(model.parameters(), lr=0.1)
    dl.functional.mse_loss(model(dl.tensor(np.ones((4, 3)))), np.zeros((4, 2))).backward()
    opt.step()
    dl.save(model, tmp_path / "m.npz", metadata={"epoch": 3}, extra=checkpoint.optimizer_state(opt))
    saved = checkpoint.read_checkpoint(tmp_path / "m.npz")
    assert saved.metadata == {"epoch": 3}
    fresh = dl.optim.Adam(model.parameters(), lr=0.1)
    checkpoint.load_optimizer_state(fresh, saved.extra)
    assert fresh.state[fresh.params[0]]["step"] == 1
    np.testing.assert_array_equal(fresh.state[fresh.params[1]]["exp_avg_sq"], opt.state[opt.params[1]]["exp_avg_sq"])


# ------------------------------------------------------------- architecture
def test_every_registered_layer_round_trips_through_json():
    layers = [
        nn.Linear(3, 4, bias=False), nn.Conv2d(2, 3, (3, 5), stride=2, padding=(1, 2)), nn.MaxPool2d(3, stride=1, padding=1),
        nn.AvgPool2d((2, 1)), nn.Flatten(0, 2), nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity(), nn.Softmax(dim=0),
        nn.LogSoftmax(dim=1), nn.Sequential(nn.Sequential(nn.ReLU()), nn.Linear(1, 1)),
    ]
    for layer in layers:
        config = json.loads(json.dumps(architecture.to_config(layer)))
        rebuilt = architecture.from_config(config)
        assert type(rebuilt) is type(layer) and repr(rebuilt) == repr(layer)


def test_unregistered_classes_are_named_and_can_be_registered():
    class Scale(nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    with pytest.raises(architecture.ArchitectureError, match="Scale is not a registered architecture"):
        architecture.to_config(nn.Sequential(nn.ReLU(), Scale(2.0)))
    architecture.register(Scale, lambda m: {"factor": m.factor}, name="TestScale")
    rebuilt = architecture.from_config(architecture.to_config(nn.Sequential(Scale(2.5))))
    assert rebuilt[0].factor == 2.5
    with pytest.raises(architecture.ArchitectureError, match="unknown module type 'Nope'"):
        architecture.from_config({"type": "Nope", "kwargs": {}})


# ------------------------------------------------------------------ recurrent models
def recurrent_models():
    from deltalab.models import ElmanNetwork, LayeredNetwork, LSTMNetwork
    from deltalab.models.shift_register import shift_register_model

    return {
        "RNN": (lambda: nn.RNN(3, 4, nonlinearity="relu", batch_first=True, bptt_truncate=2), (2, 5, 3)),
        "LSTM": (lambda: nn.LSTM(3, 4, bias=False), (5, 2, 3)),
        "RNNCell": (lambda: nn.RNNCell(3, 4, nonlinearity="sigmoid"), (2, 3)),
        "LSTMCell": (lambda: nn.LSTMCell(3, 4), (2, 3)),
        "ElmanNetwork": (lambda: ElmanNetwork(3, 4, 2, "sigmoid", "softmax", many_to_one=True, bptt_truncate=3), (5, 2, 3)),
        "LSTMNetwork": (lambda: LSTMNetwork(3, 4, 2, output_activation="tanh", bias=False), (5, 2, 3)),
        "Recurrent(FeedbackCell)": (lambda: shift_register_model("seed"), (2, 3, 3)),
        "LayeredNetwork": (lambda: LayeredNetwork((1, 5, 5), [
            {"type": "conv2d", "out_channels": 2, "kernel_size": (3, 3), "stride": (1, 1), "padding": "same",
             "activation": "relu"},
            {"type": "max_pool2d", "kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)},
            {"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"},
        ]), (2, 1, 5, 5)),
    }


def first_output(output):
    return output[0] if isinstance(output, tuple) else output


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(recurrent_models()))
def test_recurrent_models_round_trip_bit_exact(tmp_path, name, dtype):
    make, shape = recurrent_models()[name]
    dl.manual_seed(11)
    model = make().to(dtype)
    for p in model.parameters():  # W0 = 0 in the shift register: give it values to lose
        p.data = p.data + np.random.default_rng(3).normal(size=p.shape).astype(dtype)
    dl.save(model, tmp_path / "m.npz")
    raw = stored_arrays(tmp_path / "m.npz")
    for key, p in model.named_parameters():
        assert raw[f"param/{key}"].tobytes() == p.data.tobytes()
    loaded = dl.load(tmp_path / "m.npz")
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert architecture.to_config(loaded) == architecture.to_config(model)
    for (key, p), (other, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert key == other and q.dtype == np.dtype(dtype) and q.data.tobytes() == p.data.tobytes()
    x = dl.tensor(np.random.default_rng(0).normal(size=shape).astype(dtype))
    assert first_output(model(x)).numpy().tobytes() == first_output(loaded(x)).numpy().tobytes()


def test_a_recurrent_checkpoint_refuses_a_different_network(tmp_path):
    from deltalab.models import ElmanNetwork

    dl.save(ElmanNetwork(3, 4, 2), tmp_path / "m.npz")
    with pytest.raises(CheckpointError, match="architecture mismatch.*hidden_size=5"):
        dl.load_into(ElmanNetwork(3, 5, 2), tmp_path / "m.npz")


# ------------------------------------------------------------------ buffers (BatchNorm's running statistics)
def batch_norm_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def trained_batch_norm_model(steps=3):
    dl.manual_seed(21)
    model = batch_norm_model()
    opt = dl.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(4)
    for _ in range(steps):
        opt.zero_grad()
        model(dl.tensor(rng.normal(2.0, 3.0, size=(8, 3)))).sum().backward()
        opt.step()
    return model


def test_batch_norm_running_statistics_survive_save_and_load(tmp_path):
    model = trained_batch_norm_model()
    path = dl.save(model, tmp_path / "bn.npz")
    raw = stored_arrays(path)
    norm = model[1]
    assert raw["buffer/1.num_batches_tracked"] == 3
    for name in ("running_mean", "running_var"):
        assert raw[f"buffer/1.{name}"].tobytes() == getattr(norm, name).data.tobytes()
    loaded = dl.load(path)
    into = batch_norm_model()
    dl.load_into(into, path)
    x = dl.tensor(np.random.default_rng(9).normal(size=(5, 3)))
    model.eval()
    expected = model(x).numpy()
    for other in (loaded, into):
        assert other[1].num_batches_tracked.item() == 3
        np.testing.assert_array_equal(other[1].running_mean.numpy(), norm.running_mean.numpy())
        np.testing.assert_array_equal(other[1].running_var.numpy(), norm.running_var.numpy())
        other.eval()
        np.testing.assert_array_equal(other(x).numpy(), expected)
    # the eval output is the lecture's formula with the running statistics (not a fresh layer's 0 and 1)
    h = x.numpy() @ model[0].weight.numpy().T + model[0].bias.numpy()
    normed = (h - norm.running_mean.numpy()) / np.sqrt(norm.running_var.numpy() + norm.eps)
    normed = np.maximum(normed * norm.weight.numpy() + norm.bias.numpy(), 0)
    np.testing.assert_allclose(expected, normed @ model[3].weight.numpy().T + model[3].bias.numpy(), rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(norm.running_mean.numpy(), 0)


def rewrite(path, arrays, change_header=None):
    if change_header is not None:
        header = json.loads(arrays["__deltalab__"].tobytes())
        change_header(header)
        arrays["__deltalab__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


BUFFER_CASES = [
    ("non-finite running variance", lambda a: a.update({"buffer/1.running_var": np.full(4, np.inf, np.float32)}),
     None, "buffer '1.running_var' holds non-finite values"),
    ("negative batch count", lambda a: a.update({"buffer/1.num_batches_tracked": np.array(-1)}), None,
     "buffer '1.num_batches_tracked' is int64 with negative counts"),
    ("boolean buffer", lambda a: a.update({"buffer/1.running_mean": np.ones(4, bool)}), None, "buffer '1.running_mean'"),
    ("buffer array missing", lambda a: a.pop("buffer/1.running_var"), None,
     "the arrays of buffers ['1.running_var'] are missing"),
    ("unlisted buffer", lambda a: a.update({"buffer/1.extra": np.ones(4)}), None, "'buffer/1.extra.npy' is not listed"),
    ("buffer of another shape", lambda a: a.update({"buffer/1.running_mean": np.ones(5, np.float32)}), None,
     "buffer '1.running_mean' has shape (4,) in the model, (5,) in the checkpoint"),
    ("buffer name listed twice", None, lambda h: h["buffers"].append(h["buffers"][0]), "header.buffers"),
    ("buffers not a list", None, lambda h: h.update(buffers="all"), "header.buffers: expected a list of names"),
    ("a listed buffer the model lacks", lambda a: a.update({"buffer/9.running_mean": np.ones(4)}),
     lambda h: h["buffers"].append("9.running_mean"), "unexpected parameters ['9.running_mean']"),
]


@pytest.mark.parametrize("name, change_arrays, change_header, fragment", BUFFER_CASES, ids=[c[0] for c in BUFFER_CASES])
def test_crafted_buffers_are_refused(tmp_path, name, change_arrays, change_header, fragment):
    path = dl.save(trained_batch_norm_model(1), tmp_path / "bn.npz")
    arrays = stored_arrays(path)
    if change_arrays is not None:
        change_arrays(arrays)
    rewrite(path, arrays, change_header)
    with pytest.raises(CheckpointError) as info:
        dl.load(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_a_checkpoint_from_before_buffers_loads_with_fresh_buffers(tmp_path):
    path = dl.save(trained_batch_norm_model(), tmp_path / "bn.npz")
    arrays = {k: v for k, v in stored_arrays(path).items() if not k.startswith("buffer/")}
    rewrite(path, arrays, lambda h: h.pop("buffers"))
    loaded = dl.load(path)
    np.testing.assert_array_equal(loaded[1].running_mean.numpy(), np.zeros(4))
    np.testing.assert_array_equal(loaded[1].running_var.numpy(), np.ones(4))
    assert loaded[1].num_batches_tracked.item() == 0


def test_a_class_registered_once_records_its_constructor_arguments(tmp_path):
    from deltalab.io import registry

    class Shift(nn.Module):
        def __init__(self, size, amount=1.5, *, dtype=None):
            super().__init__()
            self.weight = nn.Parameter(np.zeros(size))
            self.amount = amount

        def forward(self, x):
            return x + self.weight + self.amount

    architecture.register(Shift, name="TestShift")  # no reader: the arguments it was built with
    model = nn.Sequential(Shift(3, amount=2.0), nn.Dropout(0.25))
    assert architecture.to_config(model)["kwargs"]["modules"]["modules"][0][1] == {
        "type": "TestShift", "kwargs": {"size": 3, "amount": 2.0}}  # dtype is placement, not architecture
    assert architecture.to_config(nn.Dropout(0.25)) == {"type": "Dropout", "kwargs": {"p": 0.25}}
    rebuilt = architecture.from_config(architecture.to_config(model))
    assert rebuilt[0].amount == 2.0 and rebuilt[0].weight.shape == (3,)
    # the same registry entry serves configs and torch interop
    linear = registry.by_class(nn.Linear)
    assert linear.name == "Linear" and linear.torch_name == "Linear" and linear.to_torch and linear.arguments
