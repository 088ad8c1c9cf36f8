"""The per-entry hot path: the modules setup.py compiles with mypyc when the host can.

They run once or more per log entry: assembling lines into entries, parsing the header,
classifying, building the event and its JSON, and `irisd classify --summary`'s scanner. The
compiled and the plain forms give the same output (tests/test_compiled.py).
"""

HOT_MODULES = (
    "irisd.core.lines",
    "irisd.core.logline",
    "irisd.core.model",
    "irisd.core.classify",
    "irisd.core.events",
    "irisd.core.eventjson",
    "irisd.core.summary",
)


def hot_path() -> str:
    """ "compiled" when every hot module was built as a C extension, else "pure Python"."""
    import importlib

    compiled = all(
        not (importlib.import_module(m).__file__ or "").endswith(".py") for m in HOT_MODULES
    )
    return "compiled" if compiled else "pure Python"
