"""Check the numpydoc docstrings of dmfsharp's public API; exit 1 listing every failure.

Checked: every callable in ``dmfsharp.__all__`` (functions, result types, exceptions) and
the public methods and properties that the public classes define themselves. Each is run
through :func:`numpydoc.validate.validate`, minus the codes in ``IGNORED`` (with the reason
beside each), plus the project's own rules (codes ``DS..``):

``DS01`` a top-level function or class (not an exception) without a ``References`` section;
``DS02`` a top-level function without a ``Raises`` section;
``DS03`` an ``Examples`` section without a doctest (``>>>``) line.

The ``Examples`` themselves are run by the test suite (``--doctest-modules``).
Usage: ``python scripts/check_docstrings.py [--summary]`` from the repository root (with
``src`` importable, e.g. after ``pip install .[docs]`` or with ``PYTHONPATH=src``).
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpydoc.docscrape
import numpydoc.validate

# numpydoc codes not enforced, and why.
IGNORED: dict[str, str] = {
    # See Also: useful where a real neighbour exists, but padding every entry with one adds noise.
    "SA01": "a See Also section is optional",
    # One precise summary line is enough for small helpers and properties.
    "ES01": "an extended summary is optional",
}
# Codes not enforced on the methods and properties of public classes (the class docstring
# carries the example and the references; repeating them on every accessor adds nothing).
IGNORED_ON_MEMBERS: dict[str, str] = {
    "EX01": "the class docstring's example covers its members",
}
# Non-callable public names (constants): documented in the module docstring and the API page.
CONSTANTS = ("NORMALIZATIONS", "PRESETS")


@dataclass
class Target:
    """One object to validate: its import path and what kind of public name it is."""

    path: str
    obj: object
    member: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)


def _targets() -> list[Target]:
    import dmfsharp

    out: list[Target] = []
    for name in dmfsharp.__all__:
        obj = getattr(dmfsharp, name)
        if name in CONSTANTS:
            continue
        if not callable(obj):
            raise SystemExit(f"dmfsharp.{name} is neither callable nor listed in CONSTANTS")
        path = f"{obj.__module__}.{obj.__qualname__}"
        out.append(Target(path, obj))
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(value, (property, staticmethod, classmethod)) or inspect.isfunction(value):
                    out.append(Target(f"{path}.{attr}", value, member=True))
    return out


def _sections(target: Target) -> numpydoc.docscrape.NumpyDocString:
    doc = inspect.getdoc(target.obj if not isinstance(target.obj, property) else target.obj.fget) or ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return numpydoc.docscrape.NumpyDocString(doc)


def _attribute_names(doc: numpydoc.docscrape.NumpyDocString) -> set[str]:
    names: set[str] = set()
    for item in doc["Attributes"]:
        names.update(n.strip() for n in item.name.split(","))
    return names


def check(target: Target) -> list[tuple[str, str]]:
    """Return the ``(code, message)`` failures of one target."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = numpydoc.validate.validate(target.path)
    ignored = dict(IGNORED, **(IGNORED_ON_MEMBERS if target.member else {}))
    doc = _sections(target)
    errors: list[tuple[str, str]] = []
    for code, message in result["errors"]:
        if code in ignored:
            continue
        if code == "PR01" and inspect.isclass(target.obj):
            # a dataclass documents its fields under Attributes: they are its parameters too
            sig = inspect.signature(target.obj).parameters.values()
            params = {p.name for p in sig if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
            missing = params - {item.name.lstrip("*") for item in doc["Parameters"]}
            if missing <= _attribute_names(doc):
                continue
        errors.append((code, message))
    top_level = not target.member
    is_exception = inspect.isclass(target.obj) and issubclass(target.obj, BaseException)
    if top_level and not is_exception and not doc["References"]:
        errors.append(("DS01", "No References section (cite the paper's theorem or equation)"))
    if top_level and inspect.isfunction(target.obj) and not doc["Raises"]:
        errors.append(("DS02", "No Raises section (each exception and when it is raised)"))
    if doc["Examples"] and not any(line.lstrip().startswith(">>>") for line in doc["Examples"]):
        errors.append(("DS03", "The Examples section has no doctest (>>>) line"))
    return errors


def main(argv: list[str]) -> int:
    """Validate every target; print the failures (or a per-module summary); return the exit code."""
    targets = _targets()
    failed = []
    for target in targets:
        target.errors = check(target)
        if target.errors:
            failed.append(target)
    if "--summary" in argv:
        per_module = Counter(t.path.rsplit(".", 2 if t.member else 1)[0] for t in failed)
        for module, count in sorted(per_module.items()):
            print(f"{module}: {count} objects failing")
    else:
        for target in failed:
            for code, message in target.errors:
                print(f"{target.path}: {code} {message}")
    print(
        f"{len(targets)} public objects checked, {len(failed)} failing "
        f"(ignored codes: {', '.join(sorted(IGNORED))}; on members also {', '.join(IGNORED_ON_MEMBERS)})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
