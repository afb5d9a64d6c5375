"""Models in and out: architecture configs, checkpoints, ``dl.save``/``dl.load`` and torch interop.

One registry (:mod:`.registry`) describes every module kind once: the constructor arguments
that rebuild it (recorded when the module is built), and its torch counterpart.
:mod:`.architecture` (configs), :mod:`.checkpoint` (architecture + state_dict, loaded
through ``Module.load_state_dict``) and :mod:`.interop` all read that one registry;
:mod:`.module_kinds` registers the built-in classes.  Submodules are imported on first use
(``import deltalab`` loads none of them; the built-in kinds register on the registry's first
lookup, and the classes among them described by their constructor arguments record those from
their definition on: :mod:`.arguments`).
"""
