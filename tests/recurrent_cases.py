"""One LSTM sequence run through deltalab's fused op, shared by the tests that compare two
ways of computing it (NumPy vs compiled kernels, serial vs parallel)."""
import deltalab as dl
from deltalab.ops import recurrent

LSTM_INPUTS = ("x", "h0", "c0", "weight_ih", "weight_hh", "bias")


def run_lstm(p, upstream=("h", "c"), before_backward=None):
    """Forward and backward of ``recurrent.lstm_sequence`` on the arrays in ``p`` with loss
    Σ h·grad_h (+ Σ c·grad_c); returns outputs, gate values, deltas and every gradient
    (grad_h0 / grad_c0 are the carries out of the first step)."""
    leaves = {k: dl.tensor(p[k], requires_grad=True) for k in LSTM_INPUTS if p.get(k) is not None}
    hs, cs = recurrent.lstm_sequence(*(leaves.get(k) for k in LSTM_INPUTS))
    loss = 0
    if "h" in upstream:
        loss = loss + (hs * dl.tensor(p["grad_h"])).sum()
    if "c" in upstream:
        loss = loss + (cs * dl.tensor(p["grad_c"])).sum()
    if before_backward is not None:
        before_backward()
    loss.backward()
    node = (hs if "h" in upstream else cs).grad_fn
    out = {"h": hs.data, "c": cs.data, "gates": node.saved[4], "deltas": node.deltas,
           "cell_deltas": node.cell_deltas}
    out.update({"grad_" + k: t.grad.data for k, t in leaves.items()})
    return out
