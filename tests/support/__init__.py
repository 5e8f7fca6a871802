"""Plain helpers and constants shared by the test suite; the shared fixtures are in tests/conftest.py.

One module per subject: waiting, sim (the simulator), book (open books), engine, telegram,
dashboard, browser, resources (recorded venue data), portfolio, threads."""

from pathlib import Path

# The repository root: the working directory of the processes the tests start.
REPO = Path(__file__).resolve().parents[2]
