"""SPEC §2 (lecture practical 000): convolution shapes, parameter counts and a worked image.

Every number below is the exercise's correct answer, typed in from the spec.
"""
import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab.models import lecture_cnn
from deltalab.nn import same_padding
from deltalab.ops import output_size


# ------------------------------------------------------------------- same padding
def test_same_padding_for_kernel_5x3_on_6x5_input_is_2_1():
    padding = same_padding((5, 3))
    assert padding == (2, 1)
    # and it really keeps the 6×5 size at stride 1
    assert output_size(6, 5, stride=1, padding=padding[0]) == 6
    assert output_size(5, 3, stride=1, padding=padding[1]) == 5
    x = dl.tensor(np.ones((1, 1, 6, 5)))
    w = dl.tensor(np.ones((1, 1, 5, 3)))
    assert F.conv2d(x, w, padding=padding).shape == (1, 1, 6, 5)


@pytest.mark.parametrize("kernel", [4, (5, 2), (2, 2)])
def test_even_kernel_has_no_same_padding_and_says_why(kernel):
    with pytest.raises(dl.ConfigurationError) as info:
        same_padding(kernel)
    message = str(info.value)
    assert "odd" in message and "even" in message


def test_conv_layer_with_even_kernel_and_same_padding_is_refused():
    with pytest.raises(dl.ConfigurationError, match="odd"):
        dl.nn.Conv2d(1, 1, 4, padding="same")


# ------------------------------------------------------------------- output size
@pytest.mark.parametrize(
    "size, kernel, stride, padding, expected",
    [
        (28, 5, 1, 2, 28),   # same convolution of the 28×28 exercise
        (28, 4, 2, 0, 13),   # ⌊(28 − 4)/2⌋ + 1 = 13
        (10, 3, 1, 1, 10),
        (6, 3, 1, 1, 6),
        (6, 2, 2, 0, 3),
        (7, 3, 2, 0, 3),     # ⌊4/2⌋ + 1
        (8, 3, 3, 1, 3),     # ⌊8/3⌋ + 1 (floor, not round)
    ],
)
def test_output_size_formula(size, kernel, stride, padding, expected):
    assert output_size(size, kernel, stride, padding) == expected


# ------------------------------------------------------------- parameter counts
def _summary(name):
    model, shape = lecture_cnn(name)
    return dl.summary(model, shape, print_table=False)


def test_28x28x3_conv_then_pool_has_608_parameters_and_8x13x13_output():
    result = _summary("conv-pool-28x28x3")
    assert [row.parameters for row in result.rows] == [8 * (5 * 5 * 3) + 8, 0]  # 600 + 8, pooling has none
    assert result.total_parameters == 608
    assert result.rows[0].output_shape == (8, 28, 28)
    assert result.output_shape == (8, 13, 13)


def test_10x10x1_two_convolutions_have_208_plus_876_parameters():
    result = _summary("two-conv-10x10")
    assert [row.parameters for row in result.rows] == [208, 876]
    assert result.total_parameters == 1084
    assert result.rows[0].output_shape == (8, 10, 10)
    assert result.output_shape == (12, 10, 10)


def test_dense_10x10x1_to_10x10x5_needs_50500_parameters_conv_needs_50():
    dense = _summary("dense-10x10-to-10x10x5")
    conv = _summary("conv-10x10-to-10x10x5")
    assert dense.total_parameters == 50_000 + 500 == 50_500
    assert conv.total_parameters == 5 * 3 * 3 * 1 + 5 == 50
    assert dense.output_shape == (500,)  # 10×10×5 values
    assert conv.output_shape == (5, 10, 10)


def test_summary_counts_equal_the_parameter_arrays():
    for name in ("conv-pool-28x28x3", "two-conv-10x10", "dense-10x10-to-10x10x5", "conv-10x10-to-10x10x5"):
        model, shape = lecture_cnn(name)
        result = dl.summary(model, shape, print_table=False)
        assert result.total_parameters == sum(p.numpy().size for p in model.parameters())
        assert result.trainable_parameters == result.total_parameters


# ---------------------------------------------------------- the 6×6 worked image
IMAGE = np.array(
    [
        [10, 10, 10, 10, 10, 10],
        [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 0, 0, 2],
        [2, 2, 2, 0, 0, 2],
        [50, 10, 50, 50, 50, 10],
        [50, 10, 50, 50, 50, 10],
    ],
    dtype=float,
)
RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
CENTRE = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=float)
CHANNEL_1 = np.array(
    [
        [20, 35, 35, 35, 35, 20],
        [29, 46, 44, 42, 42, 27],
        [16, 25, 21, 19, 19, 12],
        [66, 120, 116, 154, 114, 62],
        [74, 216, 174, 252, 172, 112],
        [70, 210, 170, 250, 170, 110],
    ],
    dtype=float,
)
POOLED_1 = np.array([[46, 44, 42], [120, 154, 114], [216, 252, 172]], dtype=float)
POOLED_2 = np.array([[10, 10, 10], [2, 2, 2], [50, 50, 50]], dtype=float)


def test_ring_and_centre_kernels_on_the_6x6_image():
    x = dl.tensor(IMAGE[None, None])
    w = dl.tensor(np.stack([RING, CENTRE])[:, None])  # 2 kernels, 1 input channel
    features = F.conv2d(x, w, padding=1)
    assert features.shape == (1, 2, 6, 6)
    np.testing.assert_array_equal(features.numpy()[0, 0], CHANNEL_1)
    np.testing.assert_array_equal(features.numpy()[0, 1], IMAGE)  # the centre kernel copies the image
    pooled = F.max_pool2d(features, 2, stride=2)
    np.testing.assert_array_equal(pooled.numpy()[0, 0], POOLED_1)
    np.testing.assert_array_equal(pooled.numpy()[0, 1], POOLED_2)


def test_feature_detector_model_reproduces_the_worked_image():
    model, shape = lecture_cnn("feature-detectors-6x6")
    assert shape == (1, 6, 6)
    model.load_state_dict({"0.weight": np.stack([RING, CENTRE])[:, None]})
    out = model(dl.tensor(IMAGE[None, None]))
    np.testing.assert_array_equal(out.numpy()[0], np.stack([POOLED_1, POOLED_2]))
    assert dl.summary(model, shape, print_table=False).total_parameters == 2 * 9  # no bias


def test_unbatched_chw_input_gives_chw_output():
    x = dl.tensor(IMAGE[None])
    w = dl.tensor(RING[None, None])
    out = F.conv2d(x, w, padding=1)
    assert out.shape == (1, 6, 6)
    np.testing.assert_array_equal(out.numpy()[0], CHANNEL_1)
