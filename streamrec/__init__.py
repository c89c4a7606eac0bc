"""streamrec core: shared by the pipelines, serving, the evaluation and the command line, and
installed by every pipeline worker.

Sub-packages and modules: ``events`` (the Avro contract and codec, the id rule), ``store`` (the
state contract and its backends), ``recommend`` (the recommendation maths and stage rules),
``kafka`` (producer and topics), ``replay`` (rating logs and the sessions made from them),
``config``. Nothing here imports ``pipelines``, ``serving``, ``evaluation`` or ``streamrec_cli``,
and nothing here starts processes, parses a command line or plots (``tests/core/test_architecture.py``).
"""

__version__ = "0.1.0"
