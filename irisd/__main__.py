"""`python -m irisd …` runs the `irisd` command."""

from irisd.cli import main

raise SystemExit(main())
