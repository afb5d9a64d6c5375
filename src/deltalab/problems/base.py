"""What a problem kind provides: the one interface the reader, the recorder and the checks use.

A kind (``model.type`` = mlp, cnn, rnn, lstm, equations) reads and validates its sections of
a problem file, builds the model it trains, records one step of it into a StepTrace and a
derivation, describes itself in the lecture's words and, where there is one, gives PyTorch's
reference computation.  The recorder (:mod:`deltalab.recorder`) runs the same loop for every
kind; nothing outside :mod:`deltalab.problems` branches on ``model.type``.
"""
from __future__ import annotations

from ..records import dataclass


@dataclass
class Header:
    """How a kind describes its problem at the top of a worked solution."""

    lines: list  # human lines (layers, activations, sizes)
    equations: list  # the model's equations in the lecture's notation
    loss_name: str  # "half_squared_error", or "the node L" for equations
    loss_formula: str  # "E = ½ Σ (t − y)²"
    loss_symbol: str = "E"  # the loss's name in ∂E/∂θ


class ProblemKind:
    """One problem kind; ``names`` are the ``model.type`` values it reads."""

    names: tuple = ()
    records_paths = False  # steps record the chain rule's paths (checked against autodiff)
    own_layout = False  # True: the file's sections are the kind's own (no [parameters] / [data] tables)
    sequence = False  # True: data.inputs is one sequence (T × features), targets per time step
    layer_names = True  # True: W1, b1, H1 name layer 1's parameters (False: the file's own names)
    graph = False  # True: the problem is a graph of named nodes (solve --graph draws it)

    # ---- the problem file
    def read_file(self, data, reader, model_type, heading):
        """The validated Problem of a parsed file whose ``model.type`` is one of ``names``;
        ``heading``: its (title, description), already read."""
        raise NotImplementedError

    def solved_exactly(self, problem) -> bool:
        """Whether the problem can only be solved in exact arithmetic (unknown symbols remain)."""
        return False

    def grading_loss(self, problem) -> str:
        """The loss's name as ``deltalab check``'s mistake rules know it."""
        return problem.loss

    def refusal_for(self, command, problem):
        """Why ``deltalab COMMAND`` (check, generate) cannot take this problem, naming the
        feature it lacks (None: it can)."""
        return None

    def summary_input_shape(self, problem):
        """The input shape ``deltalab summary`` shows the model's layers for (None: no layers)."""
        return None

    # ---- the model and one recorded step
    def build(self, problem):
        """The model the recorder trains: it has ``named_parameters()`` / ``parameters()`` of
        Tensors, updated in place by ``optim.SGD``, and ``trains`` (False: nothing to update)."""
        raise NotImplementedError

    def check_options(self, problem, model, check_torch, exact):
        """Refuse, with a SpecError, what the solve options ask of this problem and it cannot do."""

    def describe(self, problem, model) -> Header:
        raise NotImplementedError

    def steps(self, problem, model) -> int:
        """How many training steps to record (one forward pass when there is no loss)."""
        return problem.steps if model.trains else 1

    def record(self, problem, model, index):
        """One forward and backward pass as a StepTrace with ``gradients`` (no update yet)."""
        raise NotImplementedError

    def derive(self, problem, model, step):
        """The derivation record of a recorded step (every value with its formula)."""
        raise NotImplementedError

    def loss_label(self, problem) -> str:
        """How a message names the loss when it is not finite."""
        return "the error E"

    def refusal(self, problem, error):
        """A SpecError for an engine error raised while recording (None: not a file mistake)."""
        return None

    # ---- independent checks (see deltalab.recorder.checks)
    def difference_probe(self, problem, model, first, step):
        """(parameter arrays to perturb in place, the loss as a function of them, how many
        entries to sample) for central differences at the first step's parameters ``first``
        (``step``: that step as recorded)."""
        raise NotImplementedError

    def torch_loss(self, problem, torch, parameters):
        """The loss computed by PyTorch from torch tensors ``parameters`` (name -> tensor)."""
        raise NotImplementedError

    def exact(self, problem, model, trace, first, tolerance):
        """``--exact``: add SymPy's exact values to step 1 of ``trace`` and their check."""
        raise NotImplementedError
