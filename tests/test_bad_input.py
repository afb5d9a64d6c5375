"""User mistakes get one clear error: ShapeError names the op or layer and the shapes involved,
ConfigurationError says why a configuration is impossible, and the CLI prints one line."""
import subprocess
import sys

import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab import ConfigurationError, ShapeError


def zeros(*shape):
    return dl.tensor(np.zeros(shape))


def message_of(error_type, fn, *args, **kwargs):
    with pytest.raises(error_type) as info:
        fn(*args, **kwargs)
    return str(info.value)


def assert_mentions(message, *words):
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"


# ------------------------------------------------------------------ shapes
def test_matmul_with_mismatched_inner_sizes():
    message = message_of(ShapeError, lambda: zeros(2, 3) @ zeros(4, 5))
    assert_mentions(message, "matmul", "(2, 3)", "(4, 5)")


def test_matmul_with_unbroadcastable_batches():
    message = message_of(ShapeError, dl.ops.matmul, zeros(2, 3, 4), zeros(3, 4, 5))
    assert_mentions(message, "matmul", "(2, 3, 4)", "(3, 4, 5)")


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_elementwise_ops_that_cannot_broadcast(op):
    message = message_of(ShapeError, getattr(dl.ops, op), zeros(2, 3), zeros(4))
    assert_mentions(message, op, "(2, 3)", "(4,)")


def test_operator_syntax_reports_the_op_too():
    assert_mentions(message_of(ShapeError, lambda: zeros(3) + zeros(2)), "add", "(3,)", "(2,)")


def test_linear_input_that_does_not_fit_the_weight():
    message = message_of(ShapeError, F.linear, zeros(5, 3), zeros(4, 2))
    assert_mentions(message, "linear", "(5, 3)", "(4, 2)")


def test_conv2d_channel_mismatch():
    message = message_of(ShapeError, F.conv2d, zeros(1, 3, 8, 8), zeros(4, 2, 3, 3))
    assert_mentions(message, "conv2d", "(1, 3, 8, 8)", "(4, 2, 3, 3)", "3 channels", "expects 2")


def test_conv2d_layer_channel_mismatch_names_the_layer():
    message = message_of(ShapeError, dl.nn.Conv2d(2, 4, 3), zeros(1, 3, 8, 8))
    assert_mentions(message, "Conv2d", "(1, 3, 8, 8)", "2")


def test_linear_layer_inside_sequential_names_the_layer_index():
    net = dl.nn.Sequential(dl.nn.Flatten(), dl.nn.Linear(16, 8), dl.nn.ReLU(), dl.nn.Linear(10, 2))
    message = message_of(ShapeError, net, zeros(2, 1, 4, 4))
    assert_mentions(message, "layer 3", "Linear", "(2, 8)", "10")
    message = message_of(ShapeError, net, zeros(2, 1, 5, 5))
    assert_mentions(message, "layer 1", "Linear", "(2, 25)", "16")


def test_conv_layer_inside_sequential_names_the_layer_index():
    net = dl.nn.Sequential(dl.nn.Conv2d(1, 4, 3), dl.nn.ReLU(), dl.nn.Conv2d(3, 2, 3))
    message = message_of(ShapeError, net, zeros(1, 1, 8, 8))
    assert_mentions(message, "layer 2", "Conv2d", "(1, 4, 6, 6)")


def test_other_shape_mistakes():
    assert_mentions(message_of(ShapeError, lambda: zeros(2, 3).reshape(4, 2)), "reshape", "(2, 3)", "(4, 2)")
    assert_mentions(message_of(ShapeError, dl.concatenate, [zeros(2, 3), zeros(2, 4)], axis=0), "concatenate")
    assert_mentions(message_of(ShapeError, dl.stack, [zeros(2), zeros(3)]), "stack", "(2,)", "(3,)")
    assert_mentions(message_of(ShapeError, F.mse_loss, zeros(2, 3), np.zeros((3, 2))), "(2, 3)", "(3, 2)")
    assert_mentions(message_of(ShapeError, F.cross_entropy, zeros(4, 3), np.array([0, 1])), "cross_entropy", "(2,)")
    assert_mentions(message_of(ShapeError, F.cross_entropy, zeros(2, 3), np.array([0, 3])), "cross_entropy", "0..2")


def test_backward_from_a_non_scalar_explains_itself():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="single value"):
        (x * 2).backward()


# ---------------------------------------------------------- configurations
def test_kernel_larger_than_the_padded_input():
    message = message_of(ConfigurationError, F.conv2d, zeros(1, 1, 4, 4), zeros(1, 1, 7, 3), padding=1)
    assert_mentions(message, "conv2d", "larger", "(7, 3)", "(6, 6)")
    message = message_of(ConfigurationError, F.max_pool2d, zeros(1, 1, 3, 3), 4)
    assert_mentions(message, "max_pool2d", "larger")
    message = message_of(ConfigurationError, dl.nn.Conv2d(1, 1, 5), zeros(1, 1, 3, 3))
    assert_mentions(message, "larger")


@pytest.mark.parametrize("stride", [0, (1, 0), -1])
def test_stride_zero_or_negative(stride):
    message = message_of(ConfigurationError, F.conv2d, zeros(1, 1, 4, 4), zeros(1, 1, 3, 3), stride=stride)
    assert_mentions(message, "conv2d", "stride", "at least 1")
    assert_mentions(message_of(ConfigurationError, F.avg_pool2d, zeros(1, 1, 4, 4), 2, stride), "avg_pool2d", "stride")
    assert_mentions(message_of(ConfigurationError, dl.nn.Conv2d, 1, 1, 3, stride=stride), "stride")


def test_negative_padding():
    message = message_of(ConfigurationError, F.conv2d, zeros(1, 1, 4, 4), zeros(1, 1, 3, 3), padding=(0, -1))
    assert_mentions(message, "conv2d", "padding", "negative")
    assert_mentions(message_of(ConfigurationError, dl.nn.Conv2d, 1, 1, 3, padding=-1), "padding")
    assert_mentions(message_of(ConfigurationError, F.max_pool2d, zeros(1, 1, 4, 4), 3, 1, -1), "padding")


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
def test_pooling_padding_more_than_half_the_kernel(pool):
    message = message_of(ConfigurationError, pool, zeros(1, 1, 6, 6), 2, 1, 2)
    assert_mentions(message, "padding", "half")
    message = message_of(ConfigurationError, pool, zeros(1, 1, 6, 6), (3, 4), 1, (2, 1))
    assert_mentions(message, "half")
    assert pool(zeros(1, 1, 6, 6), 3, 1, 1).shape == (1, 1, 6, 6)  # exactly half (rounded down) is fine


def test_pooling_module_with_too_much_padding():
    assert_mentions(message_of(ConfigurationError, dl.nn.MaxPool2d(2, padding=2), zeros(1, 1, 6, 6)), "half")


def test_layer_and_optimizer_configurations():
    assert_mentions(message_of(ConfigurationError, dl.nn.Conv2d, 1, 1, 3, stride=2, padding="same"), "same", "stride")
    assert_mentions(message_of(ConfigurationError, dl.nn.Conv2d, 1, 1, 0), "kernel")
    assert_mentions(message_of(ConfigurationError, dl.nn.Conv2d, 1, 1, (3, 3, 3)), "kernel_size")
    params = [dl.tensor([1.0], requires_grad=True)]
    assert_mentions(message_of(ValueError, dl.optim.SGD, params, lr=-1), "learning rate")
    dl.optim.SGD(params, lr=0)  # torch allows a zero learning rate (a frozen group)
    assert_mentions(message_of(ConfigurationError, dl.optim.SGD, params, lr=0.1, nesterov=True), "Nesterov")
    assert_mentions(message_of(ConfigurationError, dl.optim.Adam, [], lr=0.1), "empty")


# ------------------------------------------------------------------- the CLI
def test_cli_unknown_example_exits_2_with_one_line_and_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "deltalab.cli", "summary", "nope"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert_mentions(lines[0], "nope")
    assert result.stdout == ""


def test_cli_main_returns_2_for_an_unknown_example(capsys):
    from deltalab.cli import main

    assert main(["summary", "nope"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "nope" in err and "two-conv-10x10" in err  # says what would have worked


def test_cli_summary_of_a_known_example_succeeds(capsys):
    from deltalab.cli import main

    assert main(["summary", "two-conv-10x10"]) == 0
    assert "1,084" in capsys.readouterr().out
