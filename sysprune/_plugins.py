"""What gets imported on demand: plugin modules named by a study, and the optional dependencies of the extras.

A *plugin* is a module of one's own that registers models, datasets, metrics or pruning policies when imported
(``sysprune.register_model(...)``, ``sysprune.register_policy(...)`` etc.). A study names it (``plugins = ["my_extension"]``); the worker imports it
while the study file is validated and every trial process imports it again before building its model (the trial
processes fork from a server started once, so a registration made later in the worker would not reach them).

Heavy parts are optional extras (``pip install 'sysprune[torch]'``): a model or dataset declares the modules it
needs, and naming it without them is one line that says which extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Iterable
from typing import Any

from sysprune.exceptions import InvalidArgument, MissingDependency, PluginError

__all__ = [
    "EXTRAS",
    "MissingDependency",
    "PluginError",
    "check_installed",
    "check_registrant",
    "import_plugins",
    "installed",
    "is_module_path",
]

#: Which extra provides each optional module.
EXTRAS: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torch",
    "pmlb": "pmlb",
    "optuna_dashboard": "dashboard",
    "psycopg2": "postgres",
    "scikit_posthocs": "results",
    "statsmodels": "results",
    "kaleido": "results",
}

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def is_module_path(name: object) -> bool:
    """True for a syntactically valid dotted module path (``my_ext``, ``pkg.models.tiny``)."""
    return isinstance(name, str) and _MODULE.fullmatch(name) is not None


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_installed(requires: Iterable[str], what: str) -> None:
    """Raise :class:`MissingDependency` if a module of ``requires`` is not installed; ``what`` names the user."""
    missing = [m for m in requires if not installed(m)]
    if not missing:
        return
    extras = sorted({EXTRAS[m] for m in missing if m in EXTRAS})
    others = [m for m in missing if m not in EXTRAS]
    how = []
    if extras:
        how.append(f"install sysprune[{','.join(extras)}] (pip install 'sysprune[{','.join(extras)}]')")
    if others:
        how.append(f"install {', '.join(others)} (pip install {' '.join(others)})")
    raise MissingDependency(f"{what} needs {', '.join(missing)}, which is not installed; {'; '.join(how)}")


def import_plugins(modules: Iterable[str]) -> tuple[str, ...]:
    """Import each plugin module (its registrations run); return the names. Raises :class:`PluginError`."""
    names = tuple(modules)
    for name in names:
        if not is_module_path(name):
            raise PluginError(f'plugin {name!r} is not a module path (e.g. "my_extension" or "pkg.plugins")')
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise PluginError(
                f"plugin module {name!r} cannot be imported ({e}); put it in the current folder or on PYTHONPATH"
            ) from None
    return names


def _registrant(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def check_registrant(where: str, name: str, known: Callable[..., Any] | None, new: Callable[..., Any]) -> None:
    """The registries' one rule (models, datasets, policies): registering the same function under its name again
    (a plugin module imported twice) is a no-op; another function under a registered name is refused
    (:class:`InvalidArgument` from ``where``, the registering function)."""
    if known is not None and _registrant(known) != _registrant(new):
        valid = f"a name not yet registered (this one is {_registrant(known)}'s)"
        raise InvalidArgument("name", name, valid, where=where)
