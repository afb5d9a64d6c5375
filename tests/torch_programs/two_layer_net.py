# "Learning PyTorch with Examples": a two-layer ReLU network fitting random data, three ways.
import numpy as np
import torch

N, D_in, H, D_out = 16, 20, 12, 4
rng = np.random.default_rng(0)
x = torch.from_numpy(rng.standard_normal((N, D_in))).to(torch.get_default_dtype())
y = torch.from_numpy(rng.standard_normal((N, D_out))).to(torch.get_default_dtype())


def make_tensors():
    # Tensors and autograd: the weights are plain tensors that require grad
    w1 = torch.randn(D_in, H, requires_grad=True)
    w2 = torch.randn(H, D_out, requires_grad=True)
    return {"w1": w1, "w2": w2}


def train_tensors(weights, steps):
    w1, w2 = weights["w1"], weights["w2"]
    learning_rate = 1e-4
    losses = []
    for t in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return losses


def make_nn():
    return torch.nn.Sequential(
        torch.nn.Linear(D_in, H),
        torch.nn.ReLU(),
        torch.nn.Linear(H, D_out),
    )


def train_nn(model, steps):
    loss_fn = torch.nn.MSELoss(reduction="sum")
    learning_rate = 1e-3
    losses = []
    for t in range(steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    return losses


def make_optim():
    return make_nn()


def train_optim(model, steps):
    loss_fn = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for t in range(steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses
