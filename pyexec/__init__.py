"""pyexec: how many times each binary is executed on this host, counted with eBPF.

    from pyexec import ExecCounter
    with ExecCounter() as counter:
        subprocess.run(["ls"])
        print(counter.counts())     # {"/usr/bin/ls": 1, ...}
"""

import importlib

__version__ = "0.1.0"

# Where each public name lives: imported on first use, so that `import pyexec`
# (which the pyexec command does first) costs nearly nothing.
_PUBLIC = {
    "BREAKDOWNS": "model",
    "CUT": "model",
    "FOREIGN": "model",
    "KEYS": "model",
    "MODES": "model",
    "ExecLosses": "model",
    "ExecRecord": "model",
    "DEFAULT_MAX_ENTRIES": "settings",
    "PIN_DIRECTORY": "settings",
    "Settings": "settings",
    "ExecCounter": "counter",
    "libbpf_version": "program",
    "ArgumentError": "errors",
    "ArgumentTypeError": "errors",
    "BpfPermissionError": "errors",
    "NotPinnedError": "errors",
    "PinnedElsewhereError": "errors",
    "PyexecError": "errors",
    "UnsupportedKernelError": "errors",
}
__all__ = sorted(_PUBLIC)  # noqa: PLE0605  (the names _PUBLIC lists, imported on first use)


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pyexec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value

