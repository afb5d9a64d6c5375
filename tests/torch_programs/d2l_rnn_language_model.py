# d2l "Recurrent Neural Networks": a character-level language model from scratch and with nn.RNN.
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

text = ("the time machine by h g wells the time traveller for so it will be convenient to speak of him "
        "was expounding a recondite matter to us his grey eyes shone and twinkled ") * 3
vocab = sorted(set(text))
token_to_idx = {token: i for i, token in enumerate(vocab)}
corpus = [token_to_idx[ch] for ch in text]
vocab_size, num_hiddens, batch_size, num_steps = len(vocab), 24, 4, 8


def seq_data_iter_sequential(corpus, batch_size, num_steps, offset):
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(np.array(corpus[offset: offset + num_tokens]))
    Ys = torch.tensor(np.array(corpus[offset + 1: offset + 1 + num_tokens]))
    Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        X = Xs[:, i: i + num_steps]
        Y = Ys[:, i: i + num_steps]
        yield X, Y


def grad_clipping(net, theta):
    if isinstance(net, nn.Module):
        params = [p for p in net.parameters() if p.requires_grad]
    else:
        params = net.params
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


# ---------------------------------------------------------------- from scratch
def get_params(vocab_size, num_hiddens):
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return torch.randn(shape) * 0.01

    W_xh = normal((num_inputs, num_hiddens))
    W_hh = normal((num_hiddens, num_hiddens))
    b_h = torch.zeros(num_hiddens)
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs)
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_rnn_state(batch_size, num_hiddens):
    return (torch.zeros((batch_size, num_hiddens)),)


def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


class RNNModelScratch:
    def __init__(self, vocab_size, num_hiddens, get_params, init_state, forward_fn):
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.params = get_params(vocab_size, num_hiddens)
        self.init_state, self.forward_fn = init_state, forward_fn

    def __call__(self, X, state):
        X = F.one_hot(X.T, self.vocab_size).type(torch.float32 if torch.get_default_dtype() == torch.float32
                                                 else torch.float64)
        return self.forward_fn(X, state, self.params)

    def begin_state(self, batch_size):
        return self.init_state(batch_size, self.num_hiddens)


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def make_scratch():
    net = RNNModelScratch(vocab_size, num_hiddens, get_params, init_rnn_state, rnn)
    return {str(i): p for i, p in enumerate(net.params)}, net


def train_scratch(model, steps):
    _, net = model
    return train_language_model(net, lambda batch_size: sgd(net.params, 1.0, batch_size), steps)


# ---------------------------------------------------------------- with nn.RNN
class RNNModel(nn.Module):
    def __init__(self, rnn_layer, vocab_size, **kwargs):
        super(RNNModel, self).__init__(**kwargs)
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.num_hiddens = self.rnn.hidden_size
        self.num_directions = 2 if self.rnn.bidirectional else 1
        self.linear = nn.Linear(self.num_hiddens * self.num_directions, self.vocab_size)

    def forward(self, inputs, state):
        X = F.one_hot(inputs.T.long(), self.vocab_size)
        X = X.to(torch.get_default_dtype())
        Y, state = self.rnn(X, state)
        output = self.linear(Y.reshape((-1, Y.shape[-1])))
        return output, state

    def begin_state(self, batch_size=1):
        return torch.zeros((self.num_directions * self.rnn.num_layers, batch_size, self.num_hiddens))


def make_concise():
    return RNNModel(nn.RNN(vocab_size, num_hiddens), vocab_size=vocab_size)


def train_concise(net, steps):
    updater = torch.optim.SGD(net.parameters(), 1.0)
    return train_language_model(net, lambda batch_size: updater.step(), steps, updater)


def train_language_model(net, step, steps, updater=None):
    loss = nn.CrossEntropyLoss()
    losses, state, total, count = [], None, 0.0, 0
    while len(losses) < steps:
        for X, Y in seq_data_iter_sequential(corpus, batch_size, num_steps, offset=len(losses) % 5):
            if len(losses) == steps:
                break
            if state is None:
                state = net.begin_state(batch_size=X.shape[0])
            else:
                if isinstance(net, nn.Module) and not isinstance(state, tuple):
                    state.detach_()
                else:
                    for s in state:
                        s.detach_()
            y = Y.T.reshape(-1)
            y_hat, state = net(X, state)
            l = loss(y_hat, y.long()).mean()
            if updater is not None:
                updater.zero_grad()
            l.backward()
            grad_clipping(net, 1)
            step(batch_size=1)
            losses.append(l.item())
            total += l.item() * y.numel()
            count += y.numel()
    losses.append(math.exp(total / count))  # perplexity
    return losses
