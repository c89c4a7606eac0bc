"""CatalogUpsert: titles land in the store; a new title gets its basis vector, a known one keeps its own."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest

from pipelines.stages import CatalogUpsert
from streamrec.events.model import CatalogItem
from streamrec.recommend.vectors import item_basis
from streamrec.store import open_store
from tests.pipelines.helpers import batch_options, store_url

pytestmark = pytest.mark.pipeline


def test_catalog_upsert_writes_metadata_and_vectors_for_new_titles_only(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    learned = np.arange(64, dtype=np.float32)
    open_store(url).put_item_vectors({"known": learned})  # a title the co-watch stage already learned
    items = [CatalogItem(video_id="new", title="New Title", genres=("Drama",), release_year=2026),
             CatalogItem(video_id="known", title="Known Title", genres=("Comedy",))]
    with beam.Pipeline(options=batch_options()) as pipeline:
        _ = pipeline | beam.Create(items) | CatalogUpsert(url, batch_size=1)
    store = open_store(url)
    assert store.get_items(["new", "known"]) == {"new": items[0], "known": items[1]}
    vectors = store.get_item_vectors(["new", "known"])
    np.testing.assert_array_equal(vectors["new"], item_basis("new"))
    np.testing.assert_array_equal(vectors["known"], learned)
