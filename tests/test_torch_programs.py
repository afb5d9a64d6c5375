"""Six familiar PyTorch programs (tests/torch_programs/*.py, plain PyTorch) run twice: in torch,
and through a literal ``torch`` → ``deltalab`` rename of the same source, from the same initial
weights (copied from the torch run's model as NumPy arrays).  The losses of the first 20 steps
(and whatever else a program returns: accuracies, guesses, perplexity) must agree.

Each program defines pairs ``make_<variant>()`` (the model: a Module, a dict of tensors, or a
tuple whose first item is that dict) and ``train_<variant>(model, steps)`` (a list of numbers).
"""
import pathlib
import re

import numpy as np
import pytest

import deltalab as dl

torch = pytest.importorskip("torch")

PROGRAMS = pathlib.Path(__file__).parent / "torch_programs"
STEPS = 20
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


def variants():
    for path in sorted(PROGRAMS.glob("*.py")):
        for name in re.findall(r"^def make_(\w+)\(", path.read_text(), flags=re.M):
            yield path.stem, name


def renamed(source):
    """The literal rename a user would do (``torch.nn.functional`` becomes ``deltalab.nn.functional``)."""
    return source.replace("torch", "deltalab")


def with_default_dtype(source, dtype):
    return f"import torch\ntorch.set_default_dtype(torch.{dtype})\n" + source


def run_source(source, variant, filename, initial=None):
    namespace = {"__name__": f"torch_program_{variant}"}
    exec(compile(source, filename, "exec"), namespace)
    model = namespace[f"make_{variant}"]()
    if initial is not None:
        load_weights(model, initial)
    weights = weights_of(model)
    return weights, namespace[f"train_{variant}"](model, STEPS)


def weights_of(model):
    """Copies of the initial weights as NumPy arrays, by name."""
    if isinstance(model, tuple):
        model = model[0]
    if isinstance(model, dict):
        return {k: np.array(v.detach().numpy(), copy=True) for k, v in model.items()}
    return {k: np.array(getattr(v, "numpy", lambda: v)(), copy=True) if not isinstance(v, np.ndarray) else v.copy()
            for k, v in ((k, v.detach() if hasattr(v, "detach") else v) for k, v in model.state_dict().items())}


def load_weights(model, initial):
    if isinstance(model, tuple):
        model = model[0]
    if isinstance(model, dict):
        for name, tensor in model.items():
            tensor.data = initial[name].astype(tensor.dtype)  # the same tensor object the program holds
    else:
        model.load_state_dict(initial)


@pytest.fixture
def default_dtypes():
    """Each program sets both libraries' default dtype; restored afterwards (torch on one thread:
    these are tiny models on a shared machine)."""
    torch_before, deltalab_before, threads_before = torch.get_default_dtype(), dl.get_default_dtype(), \
        torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(torch_before)
    dl.set_default_dtype(deltalab_before)
    torch.set_num_threads(threads_before)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program, variant", list(variants()))
def test_program_computes_the_same_losses_after_the_rename(program, variant, dtype, default_dtypes):
    source = with_default_dtype((PROGRAMS / f"{program}.py").read_text(), dtype)
    torch.manual_seed(0)
    initial, expected = run_source(source, variant, f"{program}.py")
    dl.manual_seed(0)
    _, losses = run_source(renamed(source), variant, f"{program}.py (deltalab)", initial)
    assert len(losses) == len(expected)
    np.testing.assert_allclose(np.asarray(losses, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
