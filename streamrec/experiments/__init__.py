"""Experiments: A/B tests of ranking variants on live traffic, measured in the stream.

- :mod:`~streamrec.experiments.config`: the experiment document, its validation, assignment;
- :mod:`~streamrec.experiments.attribution`: plays and completes credited to impressions (pure);
- :mod:`~streamrec.experiments.storage`: experiments and counts in the store (ranked lists);
- :mod:`~streamrec.experiments.stats` and :mod:`~streamrec.experiments.results`: the statistics
  and the results document. docs/experiments.md explains them.
"""

from streamrec.experiments.config import (
    HOLDOUT,
    Experiment,
    ExperimentError,
    Variant,
    assign,
    parse_experiment,
    running_experiment,
)

__all__ = ["HOLDOUT", "Experiment", "ExperimentError", "Variant", "assign", "parse_experiment",
           "running_experiment"]
