"""raycl: a Ray-distributed population trainer for continual and active learning.

Implements the systems of the dissertation "Hyper-Learning with Deep Artificial Neurons"
(2023): Deep Artificial Neurons, Hyper-Learning, Self-Net, DAL-OSR and DALBT.
"""

__version__ = "0.1.0"


class RayclError(Exception):
    """An error a user can fix; the CLI prints its message without a traceback."""


def lazy_exports(package: str, modules: dict[str, tuple[str, ...]]):
    """A package's `__getattr__`, `__dir__` and `__all__` for the names its modules export
    ({module: names}), each imported on first use, so that `raycl --help` does not import
    torch (PEP 562)."""
    import importlib

    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__():
        return sorted(home)

    return __getattr__, __dir__, list(home)
