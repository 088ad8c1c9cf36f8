"""The build: irisd's per-entry hot path compiled to C with mypyc, the rest as plain Python.

The modules in HOT (listed in irisd/_hot.py) run once or more per log entry: assembling lines
into entries, parsing the header, classifying, building the event, its JSON and its row. mypyc
compiles them from the same typed source (the one `make check` holds to mypy --strict) into C
extensions, which makes the file → SQLite path about a third faster (README, "Speed and
footprint"). Behaviour is the same either way: tests/test_compiled.py holds the two to
byte-identical output on the real sample log.

Without a C compiler or Python's headers the build installs the plain modules and says so;
`IRISD_PURE_PYTHON=1` asks for that on purpose (to step through the hot path in a debugger).
`irisd run` logs which one it runs at start-up (`irisd._hot.hot_path`).
"""

import os
import runpy
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

# The modules to compile, named once in irisd/_hot.py for the build, the Makefile and `hot_path()`.
HOT = runpy.run_path(str(Path(__file__).parent / "irisd" / "_hot.py"))["hot_sources"]()


def cannot_compile() -> str | None:
    """Why this host cannot build the C extensions, or None if it can."""
    if os.environ.get("IRISD_PURE_PYTHON", "") not in ("", "0"):
        return "IRISD_PURE_PYTHON is set"
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    if not headers.exists():
        return f"no Python headers ({headers}; Debian: apt-get install python3-dev)"
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc}; Debian: apt-get install gcc)"
    return None


def ext_modules() -> list[object]:
    reason = cannot_compile()
    if reason is not None:
        print(f"irisd: building the pure-Python hot path: {reason}", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    return mypycify(HOT, opt_level="3", group_name="irisd_hot")


setup(ext_modules=ext_modules())
