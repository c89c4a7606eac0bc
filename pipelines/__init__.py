"""streamrec pipelines."""
