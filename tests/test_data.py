"""Datasets: the MNIST IDX reader on files written byte by byte here, the digits split, batching."""
import gzip
import struct

import numpy as np
import pytest

from deltalab.data import IDXError, iterate_batches, load_digits, num_batches, read_idx, write_idx
from deltalab.errors import DeltalabError


def idx_bytes(code, shape, payload):
    """An IDX file as MNIST's page describes it: 0, 0, type code, ndim, big-endian uint32 sizes, data."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def test_reads_uint8_images_like_mnist(tmp_path):
    pixels = bytes(range(2 * 3 * 4))
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(idx_bytes(0x08, (2, 3, 4), pixels))
    images = read_idx(path)
    assert images.dtype == np.uint8 and images.shape == (2, 3, 4)
    assert images[1, 2, 3] == 23 and images[0, 1, 0] == 4


def test_reads_labels_and_big_endian_wide_types(tmp_path):
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(0x08, (5,), bytes([7, 2, 1, 0, 4])))
    np.testing.assert_array_equal(read_idx(labels), [7, 2, 1, 0, 4])
    shorts = tmp_path / "i16.idx"
    shorts.write_bytes(idx_bytes(0x0B, (3,), struct.pack(">3h", -2, 300, 7)))
    np.testing.assert_array_equal(read_idx(shorts), [-2, 300, 7])
    floats = tmp_path / "f32.idx"
    floats.write_bytes(idx_bytes(0x0D, (2, 2), struct.pack(">4f", 1.5, -0.25, 3.0, 8.0)))
    result = read_idx(floats)
    assert result.dtype == np.float32 and result.dtype.isnative
    np.testing.assert_array_equal(result, [[1.5, -0.25], [3.0, 8.0]])
    doubles = tmp_path / "f64.idx"
    doubles.write_bytes(idx_bytes(0x0E, (1,), struct.pack(">d", 0.1)))
    assert read_idx(doubles)[0] == 0.1


def test_reads_gzip_compressed_files(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (4,), bytes([3, 1, 4, 1]))))
    np.testing.assert_array_equal(read_idx(path), [3, 1, 4, 1])


def test_write_idx_produces_the_documented_bytes(tmp_path):
    path = tmp_path / "out.idx"
    write_idx(path, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32))
    assert path.read_bytes() == idx_bytes(0x0C, (2, 3), struct.pack(">6i", 1, 2, 3, 4, 5, 6))
    gz = tmp_path / "out.idx.gz"
    write_idx(gz, np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert gzip.decompress(gz.read_bytes()) == idx_bytes(0x08, (2, 3), bytes(range(6)))


@pytest.mark.parametrize(
    "content, words",
    [
        (b"\x1f\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number"),
        (b"PK\x03\x04 this is a zip", "bad magic number"),
        (b"\x00\x00", "shorter than the 4-byte header"),
        (idx_bytes(0x07, (1,), b"\x00"), "unknown IDX type code 0x07"),
        (bytes([0, 0, 8, 3]) + struct.pack(">I", 28), "truncated IDX header"),
        (idx_bytes(0x08, (10, 28, 28), bytes(100)), "truncated IDX data"),
        (idx_bytes(0x08, (2,), bytes(5)), "unexpected bytes"),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, content, words):
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    assert isinstance(info.value, DeltalabError)
    assert str(path) in str(info.value) and words in str(info.value)


def test_truncated_gzip_and_missing_file(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (100,), bytes(100)))[:20])
    with pytest.raises(IDXError, match="gzip data is corrupt or truncated"):
        read_idx(path)
    with pytest.raises(IDXError, match="cannot read IDX file"):
        read_idx(tmp_path / "absent")


# ------------------------------------------------------------------ digits
def test_digits_split_shapes_scaling_and_stratification():
    from sklearn.datasets import load_digits as sklearn_digits

    digits = load_digits()
    assert digits.train.x.shape == (1433, 1, 8, 8) and digits.test.x.shape == (364, 1, 8, 8)
    assert digits.train.x.dtype == np.float32
    assert digits.train.x.min() == 0.0 and digits.train.x.max() == 1.0
    reference = sklearn_digits()
    # the documented rule: within each class, every fifth sample (starting with the first) is a test sample
    test_index = np.concatenate([np.flatnonzero(reference.target == c)[::5] for c in range(10)])
    test_index.sort()
    np.testing.assert_array_equal(digits.test.y, reference.target[test_index])
    np.testing.assert_array_equal(digits.test.x[:, 0], (reference.images[test_index] / 16).astype(np.float32))
    train_index = np.setdiff1d(np.arange(len(reference.target)), test_index)
    np.testing.assert_array_equal(digits.train.y, reference.target[train_index])
    assert set(np.bincount(digits.test.y)) <= {35, 36, 37}


def test_digits_are_deterministic_and_float64_on_request():
    a, b = load_digits(), load_digits(dtype=np.float64)
    np.testing.assert_array_equal(a.train.y, b.train.y)
    np.testing.assert_array_equal(a.test.x, b.test.x.astype(np.float32))
    assert b.test.x.dtype == np.float64


# ---------------------------------------------------------------- batching
def test_batches_cover_every_row_once_in_order_without_shuffle():
    x, y = np.arange(10).reshape(10, 1), np.arange(10) * 10
    batches = list(iterate_batches(x, y, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2] == [len(b[1]) for b in batches]
    np.testing.assert_array_equal(np.concatenate([b[0][:, 0] for b in batches]), np.arange(10))
    assert num_batches(10, 4) == 3 and num_batches(10, 4, drop_last=True) == 2
    assert [len(b[0]) for b in iterate_batches(x, batch_size=4, drop_last=True)] == [4, 4]


def test_shuffled_batches_are_a_seeded_permutation_keeping_pairs_aligned():
    x, y = np.arange(50), np.arange(50) * 2
    first = list(iterate_batches(x, y, batch_size=8, shuffle=True, rng=7))
    again = list(iterate_batches(x, y, batch_size=8, shuffle=True, rng=np.random.default_rng(7)))
    other = list(iterate_batches(x, y, batch_size=8, shuffle=True, rng=8))
    order = np.concatenate([b[0] for b in first])
    np.testing.assert_array_equal(order, np.random.default_rng(7).permutation(50))
    np.testing.assert_array_equal(order, np.concatenate([b[0] for b in again]))
    assert not np.array_equal(order, np.concatenate([b[0] for b in other]))
    for bx, by in first:
        np.testing.assert_array_equal(by, 2 * bx)


def test_batching_user_errors():
    with pytest.raises(DeltalabError, match="different lengths"):
        list(iterate_batches(np.zeros(3), np.zeros(4), batch_size=2))
    with pytest.raises(DeltalabError, match="batch_size"):
        list(iterate_batches(np.zeros(3), batch_size=0))
    with pytest.raises(DeltalabError, match="needs rng"):
        list(iterate_batches(np.zeros(3), batch_size=2, shuffle=True))
