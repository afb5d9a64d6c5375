import numpy as np

import deltalab as dl


def test_deep_graph_backpropagates_without_recursion_error():
    a = dl.tensor(2.0, requires_grad=True)
    h = a
    for _ in range(100_000):
        h = h * 1.0 + 0.0
    h.backward()
    assert a.grad.item() == 1.0


def test_gradients_accumulate_until_zeroed():
    a = dl.tensor([1.0, 2.0], requires_grad=True)
    (a * 3).sum().backward()
    (a * 3).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [6.0, 6.0])
    a.zero_grad()
    assert a.grad is None
