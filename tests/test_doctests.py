"""Every docstring example of the package runs and prints what it says.

The modules are imported by their installed names (``collapse.analysis.checks``, not
``analysis.checks``), so the examples see the same module objects as users do.
"""

import doctest
import importlib
import pkgutil

import pytest

import collapse

PACKAGES = ("collapse.analysis", "collapse.simulate", "collapse.lm")
# Importing these pulls in torch; their examples, if any, run in the LM tests.
HEAVY = {"collapse.lm.modeling", "collapse.lm.training"}


def _modules():
    names = ["collapse"]
    for package in PACKAGES:
        module = importlib.import_module(package)
        names += [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)
                  if info.name != "__main__"]
    return [name for name in names if name not in HEAVY]


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=True, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def test_public_api_has_examples():
    # Every public name of the package's front door documents itself with an example.
    missing = [name for name in collapse.__all__
               if "Examples" not in (getattr(collapse, name).__doc__ or "")]
    assert not missing, f"public names without an Examples section: {missing}"
