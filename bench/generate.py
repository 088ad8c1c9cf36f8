"""Time `irisd generate --count 1000` (template path): in-process, warm, and as a command.

.venv/bin/python bench/generate.py
"""

from __future__ import annotations

import subprocess
import sys
import time


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
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "irisd.cli", "generate", "--count", "1000"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    command = time.perf_counter() - t
    print(f"import + pool build (once per process): {cold * 1000:.1f} ms")
    print(
        f"generate 1000 lines, warm: best {min(runs) * 1000:.2f} ms, "
        f"median {sorted(runs)[len(runs) // 2] * 1000:.2f} ms"
    )
    print(f"`irisd generate --count 1000` as a command: {command * 1000:.0f} ms (target < 500 ms)")


if __name__ == "__main__":
    main()
