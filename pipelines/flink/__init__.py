"""The streaming job on Apache Flink (PyFlink 2.3.0), beside the Beam pipeline.

- The engine-neutral adapters the Flink functions call (no PyFlink import: they run and are
  tested in the project's own virtualenv too): :mod:`pipelines.flink.core` (held writes, dead
  letters, the classes kept in Flink state, the top-picks refresh rules), :mod:`~pipelines.flink.users`,
  :mod:`~pipelines.flink.items` (catalog and title totals), :mod:`~pipelines.flink.lists` (trending,
  genre rows, new releases) and :mod:`~pipelines.flink.experiments`. Every rule is
  :mod:`streamrec.recommend`'s; every write goes through the :mod:`streamrec.store` contract.
- :mod:`pipelines.flink.job`: the PyFlink job's graph (Kafka SQL sources, routing, checkpoints),
  over the keyed process functions of :mod:`~pipelines.flink.functions` (users, titles, lists, the
  ranker) and :mod:`~pipelines.flink.experiment_functions`. Runs in ``var/flink/venv``
  (``make flink``): ``flink run -py pipelines/flink/job.py``, or through
  :class:`streamrec_cli.localflink.LocalFlink`.

See docs/pipelines.md, "The Flink job".
"""
