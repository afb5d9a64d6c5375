"""deltalab.records.dataclass makes the classes dataclasses.dataclass makes: the same repr,
equality, hashing, frozenness, fields, replace and asdict (only built cheaper)."""
import dataclasses
from dataclasses import field

import pytest

from deltalab.records import dataclass


def both(**options):
    """The same class body made by dataclasses and by deltalab.records."""
    made = []
    for decorate in (dataclasses.dataclass, dataclass):
        @decorate(**options)
        class Point:
            """A point."""

            x: int
            y: list = field(default_factory=list)
            label: str = field(default="", compare=False, repr=False)
            weight: float = field(default=1.0, hash=False)

        made.append(Point)
    return made


OPTIONS = [{}, {"frozen": True}, {"eq": False}, {"frozen": True, "eq": False}, {"repr": False}, {"order": True},
           {"unsafe_hash": True}]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_the_same_behaviour_as_dataclasses(options):
    reference, cheap = both(**options)
    a, b = reference(1, [2], "p"), cheap(1, [2], "p")
    assert (repr(a) == repr(b).replace(type(b).__qualname__, type(a).__qualname__)) or "repr" in options
    assert [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(b)]
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    assert dataclasses.replace(b, x=5).x == 5 and dataclasses.is_dataclass(b)
    for cls in (reference, cheap):
        same, other = cls(1, [2], "q"), cls(2)
        eq = options.get("eq", True)
        assert (cls(1, [2], "p") == same) is eq  # label is not compared
        assert (same == other) is False and (same != other) is True
        assert (same == "text") is False
    hashable = [getattr(cls, "__hash__") is not None for cls in (reference, cheap)]
    assert hashable[0] == hashable[1]
    if options.get("frozen") and options.get("eq", True):
        ref = {hash(reference(3, (), "a", 2.0)) == hash(reference(3, (), "b", 9.0))}
        assert ref == {hash(cheap(3, (), "a", 2.0)) == hash(cheap(3, (), "b", 9.0))} == {True}
    if options.get("frozen"):
        for obj in (a, b):
            with pytest.raises(dataclasses.FrozenInstanceError):
                obj.x = 3


def test_a_recursive_repr_and_a_class_that_writes_its_own_methods():
    @dataclass
    class Node:
        children: list = field(default_factory=list)

    node = Node()
    node.children.append(node)
    assert repr(node) == "test_a_recursive_repr_and_a_class_that_writes_its_own_methods.<locals>.Node(children=[...])"

    @dataclass
    class Own:
        x: int = 0

        def __repr__(self):
            return "own"

        def __eq__(self, other):
            return True

        __hash__ = object.__hash__

    assert repr(Own()) == "own" and Own(1) == Own(2) and isinstance(hash(Own()), int)
