"""Fields whose every change the views of backends follow.

ListBackends is answered from a cache that is rebuilt only for what changed (api/views.py): a
backend's record carries a ``version``, moved by ``changed()``. A field declared ``Tracked``
calls its owner's ``changed()`` on every assignment, so nobody has to remember to; the values
held must be immutable (numbers, text, tuples, frozensets, frozen dataclasses, read-only
mappings), since a change made in place would go unseen. State a view shows that lives anywhere
else is followed by calling ``changed()`` (``host.changed()`` in backend code) after changing it.
tests/test_change_tracking.py checks that every public field of a record and of a backend is
declared here or cannot be assigned.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar, overload

T = TypeVar("T")
#: Containers a Tracked field refuses: changed in place, they would change unseen.
MUTABLE = (list, dict, set, bytearray)


class Changes(Protocol):
    def changed(self) -> None: ...


class Tracked(Generic[T]):
    """A field (its value kept in the instance) whose assignment calls ``owner.changed()``."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Tracked[T]: ...

    @overload
    def __get__(self, instance: Changes, owner: type) -> T: ...

    def __get__(self, instance: Changes | None, owner: type) -> Tracked[T] | T:
        if instance is None:
            return self
        value: T = instance.__dict__.get(self.name, self.default)
        return value

    def __set__(self, instance: Changes, value: T) -> None:
        if isinstance(value, MUTABLE):
            raise TypeError(f"{self.name} holds immutable values (a change in place would go unseen), "
                            f"not a {type(value).__name__}")
        instance.__dict__[self.name] = value
        instance.changed()


def tracked_fields(cls: type) -> dict[str, Tracked[Any]]:
    """The Tracked fields of a class and its bases, by name."""
    found: dict[str, Tracked[Any]] = {}
    for klass in reversed(cls.__mro__):
        found.update({name: value for name, value in vars(klass).items() if isinstance(value, Tracked)})
    return found
