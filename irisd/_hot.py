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


def hot_sources() -> list[str]:
    """The hot modules' source files, relative to the project root: what setup.py compiles and
    what the Makefile reinstalls on (one conversion, so the two cannot disagree)."""
    return [m.replace(".", "/") + ".py" for m in HOT_MODULES]


def hot_path() -> str:
    """ "compiled" when every hot module was built as a C extension, else "pure Python". Asks
    where each would be loaded from, without importing it (the daemon has no use for the
    summary scanner)."""
    from importlib.util import find_spec

    def compiled(module: str) -> bool:
        spec = find_spec(module)
        return spec is not None and not (spec.origin or "").endswith(".py")

    return "compiled" if all(compiled(m) for m in HOT_MODULES) else "pure Python"
