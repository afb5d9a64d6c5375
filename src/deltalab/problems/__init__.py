"""Problem files and problem kinds.

- :mod:`.file`    reading a problem file (:func:`load_problem`, :func:`parse_problem`) into a Problem;
- :mod:`.reader`  the field reader: one-line errors naming file and field, did-you-mean;
- :mod:`.kinds`   the registry of problem kinds (``model.type``): :mod:`.layered` (mlp, cnn),
  :mod:`.recurrent` (rnn, lstm), :mod:`.equations`; each reads its sections, builds its model,
  records a step, describes itself and gives PyTorch's reference (see :mod:`.base`);
- :mod:`.layers`  the layer registry of layered problems, one module per layer kind.

Problems are read with :func:`deltalab.problems.file.load_problem` (``deltalab.problem`` re-exports
it); this package imports nothing on its own.
"""
