"""The per-entry hot path: the modules setup.py compiles with mypyc when the host can.

They run once or more per log entry: assembling lines into entries, parsing the header,
classifying, building the event, its JSON and its database row, counting it, and `irisd
classify --summary`'s scanner. The compiled and the plain forms give the same output
(tests/test_compiled.py). A class defined in one of them cannot be subclassed by plain Python
code (tests included), which is why the tailer and the store themselves are not here.
"""

HOT_MODULES = (
    "irisd.core.lines",
    "irisd.core.logline",
    "irisd.core.model",
    "irisd.core.classify",
    "irisd.core.events",
    "irisd.core.eventjson",
    "irisd.core.summary",
    "irisd.shell.schema",  # event_rows: a stored event's row and JSON
)


def hot_path() -> str:
    """ "compiled" when every hot module was built as a C extension, else "pure Python"."""
    import importlib

    compiled = all(
        not (importlib.import_module(m).__file__ or "").endswith(".py") for m in HOT_MODULES
    )
    return "compiled" if compiled else "pure Python"
