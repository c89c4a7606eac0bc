"""streamrec core: shared by pipelines, serving, the command line and the evaluation.

Sub-packages: ``events`` (the Avro contract and codec), ``store`` (the state contract and its
backends), ``recommend`` (the recommendation maths), ``config``. Nothing here imports
``pipelines``, ``serving`` or ``cli``.
"""

__version__ = "0.1.0"
