"""Prequential ("test-then-learn") evaluation of streamrec against baselines on real rating logs.

Modules: ``methods`` (the method contract), ``datasets`` (rating-log loaders), ``metrics``,
``replay`` (the protocol), ``baselines``, ``report`` (tables and plots), ``command`` (the
``streamrec eval`` logic). ``cli_main(argv)`` is the entry the command line wires to.
"""

from __future__ import annotations

from collections.abc import Sequence


def cli_main(argv: Sequence[str] | None = None) -> int:
    """Run ``streamrec eval`` with ``argv`` (without the subcommand name); returns the exit code."""
    from streamrec.evaluation.command import (
        main,  # imported late: numpy/matplotlib are heavy
    )

    return main(argv)
