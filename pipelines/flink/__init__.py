"""The streaming job on Apache Flink (PyFlink 2.3.0), beside the Beam pipeline.

- :mod:`pipelines.flink.core`: the engine-neutral adapters the Flink functions call (no PyFlink
  import: they run and are tested in the project's own virtualenv too). Every rule is
  :mod:`streamrec.recommend`'s; every write goes through the :mod:`streamrec.store` contract.
- :mod:`pipelines.flink.job`: the PyFlink job (Kafka SQL source, keyed process functions,
  checkpoints). Runs in ``var/flink/venv`` (``make flink``): ``flink run -py pipelines/flink/job.py``,
  or through :class:`streamrec_cli.localflink.LocalFlink`.

See docs/pipelines.md, "The Flink job".
"""
