"""The jsonl sink: one JSON object per line, appended to a local file that rotates by size.

For hosts whose own log shipper (Vector, Fluent Bit, syslog-ng) picks files up. Rotation is the
classic numbered scheme: `events.jsonl` → `events.jsonl.1` → `events.jsonl.2` …, the oldest beyond
`keep` removed. A batch is never split across files, so a shipper never sees half a batch in the
old file and half in the new one; a single batch larger than the limit goes into a fresh file.
"""

from __future__ import annotations

from collections.abc import Sequence

from irisd.core.sinks import Stored


def jsonl_lines(items: Sequence[Stored]) -> bytes:
    """The batch as newline-terminated JSON lines (stored JSON never contains a raw newline)."""
    return "".join(item.json + "\n" for item in items).encode()


def needs_rotation(current_size: int, incoming: int, *, max_bytes: int) -> bool:
    """Rotate before writing `incoming` bytes if they would take a non-empty file past the limit."""
    return current_size > 0 and current_size + incoming > max_bytes


def rotation_moves(name: str, *, keep: int) -> list[tuple[str, str | None]]:
    """The renames that rotate `name`, oldest first; a None target means delete.

    With keep=3: delete name.3, name.2 → name.3, name.1 → name.2, name → name.1. With keep=0 the
    full file is simply deleted.
    """
    if keep < 1:
        return [(name, None)]
    moves: list[tuple[str, str | None]] = [(f"{name}.{keep}", None)]
    moves += [(f"{name}.{n - 1}", f"{name}.{n}") for n in range(keep, 1, -1)]
    moves.append((name, f"{name}.1"))
    return moves
