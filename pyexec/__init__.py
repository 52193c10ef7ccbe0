"""pyexec: how many times each binary is executed on this host, counted with eBPF.

    from pyexec import ExecCounter
    with ExecCounter() as counter:
        subprocess.run(["ls"])
        print(counter.snapshot())   # {"/usr/bin/ls": 1, ...}
"""

import logging
from .counter import BREAKDOWNS, DEFAULT_MAX_ENTRIES, KEYS, ExecCounter, ExecRecord, ExecStats, libbpf_version
from .errors import ArgumentError, ArgumentTypeError, BpfPermissionError, PyexecError, UnsupportedKernelError

__version__ = "0.1.0"
__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "BREAKDOWNS",
    "DEFAULT_MAX_ENTRIES",
    "KEYS",
    "BpfPermissionError",
    "ExecCounter",
    "ExecRecord",
    "ExecStats",
    "PyexecError",
    "UnsupportedKernelError",
    "libbpf_version",
]

# A library stays quiet unless its user configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
