"""Time `irisd generate --count 1000` (template path): in-process, warm, and as a command.

.venv/bin/python bench/generate.py

The command is what an operator runs, so it is timed from process start to exit, seven times
(the best and the median are printed: the machine is shared, the best is the cost, the median
what a run usually sees). Target: under 500 ms.
"""

from __future__ import annotations

import subprocess
import sys
import time

RUNS = 7


def main() -> None:
    t0 = time.perf_counter()
    from irisd.emulator import generate

    generate.pool()
    cold = time.perf_counter() - t0
    runs = []
    for seed in range(20):
        t = time.perf_counter()
        generate.render_log(generate.generate(category=None, count=1000, low=0, high=3, seed=seed))
        runs.append(time.perf_counter() - t)
    commands = sorted(_command() for _ in range(RUNS))
    print(f"import + pool build (once per process): {cold * 1000:.1f} ms")
    print(
        f"generate 1000 lines, warm: best {min(runs) * 1000:.2f} ms, "
        f"median {sorted(runs)[len(runs) // 2] * 1000:.2f} ms"
    )
    print(
        f"`irisd generate --count 1000` as a command: best {commands[0] * 1000:.0f} ms, "
        f"median {commands[RUNS // 2] * 1000:.0f} ms of {RUNS} (target < 500 ms)"
    )


def _command() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "irisd", "generate", "--count", "1000"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
