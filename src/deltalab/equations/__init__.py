"""Exam-style networks from equations: any small graph or recurrent cell, solved step by step.

A problem file of ``[model] type = "equations"`` gives the model as named equations
(``[equations]``, evaluated in order, and ``[recurrence]``, unrolled over time), its trainable
leaves (``[parameters]``), constants (``[data]``, strings are unknown symbols) and initial
values (``[initial]``). One concept per module:

- :mod:`.parser`     safe parsing: ``ast`` through a fixed whitelist, size/nesting limits first;
- :mod:`.spec`       reading the tables, name checks (unknown, cycle, use before definition);
- :mod:`.graph`      the unrolled graph: node keys ``h3``, ``h(2)``, leaves, the loss node;
- :mod:`.evaluate`   one tree walk, values from a backend (the engine, or SymPy);
- :mod:`.chain_rule` local derivatives of every edge and ∂L/∂θ as a sum over paths;
- :mod:`.solver`     forward, backward, SGD steps → a :class:`~deltalab.trace.Trace`, checks;
- :mod:`.exact`      ``--exact``: SymPy values and derivatives as expressions;
- :mod:`.translate`  ``--exact`` for small standard ``mlp``/``rnn`` problems.
"""
