"""Query strings read strictly: known parameters only, each at most once.

Unknown, repeated and (unless ``blank_is_unset``, for a page's form) empty
parameters raise ``InvalidInputError``, as unknown body members do: a typo
such as ``limt=5`` or ``credential=`` must not silently widen the answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.datastructures import MultiDict

from agent_keys.errors import InvalidInputError


def query_arguments(
    args: MultiDict[str, str], known: Iterable[str], *, blank_is_unset: bool = False
) -> dict[str, str]:
    """The given (non-empty) values of the ``known`` parameters, by name."""
    names = tuple(known)
    unknown = set(args) - set(names)
    if unknown:
        raise InvalidInputError(f"unknown query parameters: {', '.join(sorted(unknown))[:200]}")
    given: dict[str, str] = {}
    for name in names:
        values = args.getlist(name)
        if len(values) > 1:
            raise InvalidInputError(f"give {name} at most once")
        if values and values[0] == "" and not blank_is_unset:
            raise InvalidInputError(f"{name} is empty: leave it out for no filter")
        if values and values[0] != "":
            given[name] = values[0]
    return given
