"""What a team would pick instead of streamrec's own parts, run in the same bench (issue 18).

- ``store_peers``: a plain dict (the ceiling) and Redis beside SQLite/Aerospike (``bench/bench_store.py``).
- ``pipeline_peers``: Quix Streams and Faust beside the Beam job (``bench/bench_pipeline.py``), each
  run by its own virtualenv (``bench/peers/install.sh``) as ``quix_pipeline.py`` / ``faust_pipeline.py``.
"""
