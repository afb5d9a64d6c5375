"""The tensor-level programs of "Learning PyTorch with Examples", written in plain PyTorch, run
twice: as written, and through a literal ``torch`` -> ``deltalab`` rename of the same source.
Same initial weights (set inside the program with torch's own in-place spelling); the losses of
the first 20 steps agree (float32 1e-4 relative, float64 1e-9)."""
import numpy as np
import pytest

A0, B0, C0, D0 = 0.3, -0.2, 0.1, 0.05
W0 = [[0.3, -0.2, 0.1]]

# the "PyTorch: Tensors and autograd" program: a cubic fitted to sin(x), manual SGD in no_grad
AUTOGRAD = """
import math
import torch

dtype = torch.DTYPE
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
x = torch.linspace(-math.pi, math.pi, 200, device=device, dtype=dtype)
y = torch.sin(x)
a = torch.tensor(A0, device=device, dtype=dtype, requires_grad=True)
b = torch.tensor(B0, device=device, dtype=dtype, requires_grad=True)
c = torch.tensor(C0, device=device, dtype=dtype, requires_grad=True)
d = torch.tensor(D0, device=device, dtype=dtype, requires_grad=True)
learning_rate = 1e-6
for t in range(20):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None
result = [a.item(), b.item(), c.item(), d.item()]
"""

# the "PyTorch: nn" program: the same fit as Linear(3, 1) on (x, x², x³), updating
# `param -= learning_rate * param.grad` for each of model.parameters() in no_grad
NN = """
import math
import torch

torch.set_default_dtype(torch.DTYPE)
x = torch.linspace(-math.pi, math.pi, 200)
y = torch.sin(x)
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
with torch.no_grad():
    model[0].weight.copy_(torch.tensor(W0))
    model[0].bias.fill_(A0)
loss_fn = torch.nn.MSELoss(reduction="sum")
learning_rate = 1e-6
for t in range(20):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    losses.append(loss.item())
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad
linear_layer = model[0]
result = [linear_layer.bias.item()] + linear_layer.weight[:, 0].tolist() + [linear_layer.weight[:, 1].item()]
torch.set_default_dtype(torch.float32)
"""


def run(source, library, dtype):
    import deltalab

    text = source.replace("DTYPE", dtype)
    if library == "deltalab":
        text = text.replace("torch", "deltalab")
    namespace = {"losses": [], "A0": A0, "B0": B0, "C0": C0, "D0": D0, "W0": W0}
    previous = deltalab.get_default_dtype()
    try:
        exec(compile(text, f"<{library} program>", "exec"), namespace)  # noqa: S102 - our own test program
    finally:
        deltalab.set_default_dtype(previous)
    return namespace["losses"], namespace["result"]


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-4), ("float64", 1e-9)])
@pytest.mark.parametrize("program", [AUTOGRAD, NN], ids=["autograd", "nn"])
def test_a_renamed_torch_program_computes_the_same_losses(program, dtype, tolerance):
    losses_torch, result_torch = run(program, "torch", dtype)
    losses_ours, result_ours = run(program, "deltalab", dtype)
    assert len(losses_ours) == 20
    np.testing.assert_allclose(losses_ours, losses_torch, rtol=tolerance)
    np.testing.assert_allclose(result_ours, result_torch, rtol=tolerance, atol=tolerance)
    assert losses_ours[-1] < losses_ours[0]  # the parameters really moved
