"""Prequential ("test-then-learn") evaluation of streamrec against baselines on real rating logs.

A package of its own beside ``pipelines/`` and ``serving/``: it uses the core (``streamrec``) like
they do, and nothing of it travels to pipeline workers. Modules: ``methods`` (the method
contract), ``datasets`` (rating logs as the protocol reads them), ``metrics``, ``replay`` (the
protocol), ``baselines``, ``ease``, ``streamrec_method`` (the product under test), ``report``
(tables; plots with the optional ``matplotlib``). The ``streamrec eval`` command that drives them
is ``streamrec_cli.evaluate``.
"""
