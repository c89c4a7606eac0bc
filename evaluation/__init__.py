"""Prequential ("test-then-learn") evaluation of streamrec against baselines on real rating logs.

A package of its own beside ``pipelines/`` and ``serving/``: it uses the core (``streamrec``) like
they do, and nothing of it travels to pipeline workers. Modules: ``methods`` (the method
contract), ``metrics``, ``replay`` (the protocol over a ``streamrec.ratings.RatingLog``: the
same reader, stars and event ids as the demo and the backfill), ``baselines``, ``ease``,
``streamrec_method`` (the product under test), ``report`` (tables; plots with the optional
``matplotlib``). The ``streamrec eval`` command that drives them
is ``streamrec_cli.evaluate``.
"""
