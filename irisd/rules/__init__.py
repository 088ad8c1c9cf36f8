"""The rule tables: irisd's default table (package data) and the operator's rule files.

Reading files lives here, outside `irisd.core`; the core compiles what it is given.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from irisd.core.classify import Classifier, load_rules
from irisd.errors import ConfigError


def default_documents() -> list[tuple[str, str]]:
    text = resources.files(__package__).joinpath("default.toml").read_text(encoding="utf-8")
    return [("irisd/rules/default.toml", text)]


def operator_documents(directory: Path | None) -> list[tuple[str, str]]:
    """The operator's `*.toml` rule files, in name order. A missing directory means none."""
    if directory is None or not directory.is_dir():
        return []
    docs = []
    for path in sorted(directory.glob("*.toml")):
        try:
            docs.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("rules.dir", f"cannot read {path}: {exc}") from exc
    return docs


def build_classifier(directory: Path | None = None) -> Classifier:
    """Operator rules first (they win), then the defaults. Any invalid rule is a ConfigError."""
    rules, errors = load_rules(operator_documents(directory) + default_documents())
    if errors:
        raise ConfigError("rules", str(errors[0]))
    return Classifier(rules)


@functools.cache
def default_classifier() -> Classifier:
    return build_classifier(None)
