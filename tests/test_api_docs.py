"""Every public function of the public API documents its parameters (numpydoc
``Parameters`` section): each parameter of the signature is documented under its
own name, and nothing documented is missing from the signature."""
from __future__ import annotations

import importlib
import inspect

import pytest
from numpydoc.docscrape import FunctionDoc

#: the public API: module -> the names to check (None: the module's ``__all__``)
PUBLIC = {
    "imgio.v3": None,
    "imgio.v2": None,
    "imgio.lazy": None,
    "imgio.convert": None,
    "imgio.cli": None,
    "imgio.testing": None,
    "imgio.io.raw": None,
    "imgio.errors": ("file_not_found", "dir_not_found", "selection_error",
                     "missing_selection", "unexpected_keyword"),
    "imgio.core.registry": ("plugins", "get_spec", "known_extensions", "apply_metadata",
                            "builtin_spec_for"),
}


def _public_functions():
    seen = set()
    for modname, names in PUBLIC.items():
        module = importlib.import_module(modname)
        for name in names if names is not None else module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                members = [(f"{name}.{m}", f) for m, f in vars(obj).items()
                           if not m.startswith("_") and inspect.isfunction(f)
                           and f.__qualname__.startswith(obj.__qualname__ + ".")
                           and not m.startswith("test_")]
            elif inspect.isfunction(obj):
                members = [(name, obj)]
            else:
                continue
            for qual, func in members:
                func = inspect.unwrap(func)
                if func in seen:
                    continue
                seen.add(func)
                yield pytest.param(func, id=f"{modname}.{qual}")


def documented_names(func) -> list[str]:
    """The parameter names a numpydoc docstring documents (``a, b : int`` is two)."""
    doc = FunctionDoc(func)
    names = []
    for param in doc["Parameters"]:
        for name in param.name.split(","):
            name = name.strip().lstrip("*")
            if name:
                names.append(name)
    return names


def signature_names(func) -> list[str]:
    params = list(inspect.signature(func).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params]


FUNCTIONS = list(_public_functions())


def test_the_walk_covers_the_api():
    ids = {p.id for p in FUNCTIONS}
    for name in ("imgio.v3.imread", "imgio.v2.mimread", "imgio.lazy.to_dask",
                 "imgio.convert.convert", "imgio.cli.info", "imgio.io.raw.pread_into",
                 "imgio.errors.unexpected_keyword", "imgio.testing.roundtrip"):
        assert name in ids, name
    assert len(FUNCTIONS) > 40


@pytest.mark.parametrize("func", FUNCTIONS)
def test_parameters_are_documented(func):
    wanted = signature_names(func)
    documented = documented_names(func)
    missing = [n for n in wanted if n not in documented]
    takes_any = any(p.kind is p.VAR_KEYWORD
                    for p in inspect.signature(func).parameters.values())
    # keywords a function takes through **kwargs may be documented by name
    unknown = [] if takes_any else [n for n in documented if n not in wanted]
    assert not missing and not unknown, (
        f"{func.__module__}.{func.__qualname__}: undocumented {missing}, "
        f"documented but not in the signature {unknown}")


def test_checker_catches_missing_and_misnamed():
    def f(a, b, *, c=None, **kwargs):
        """Do.

        Parameters
        ----------
        a, b : int
            Numbers.
        cc : str
            Misnamed.
        **kwargs
            Passed on.
        """
    assert documented_names(f) == ["a", "b", "cc", "kwargs"]
    assert signature_names(f) == ["a", "b", "c", "kwargs"]
