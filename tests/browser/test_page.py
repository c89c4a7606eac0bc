"""The demo page in a real headless Chromium against the whole demo stack.

A viewer opens their page, clicks "watch to the end" on a top pick: the title leaves top picks
and "because you watched" it appears with its neighbours, within seconds; "stop halfway" on
another title puts it in continue watching. Every click posts real events to /v1/events.

Uses Debian's ``chromium`` (``make test`` installs it) through Playwright; skips, saying why,
when it is absent.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamrec.ratings import load_ratings, split_history
from tests.fixtures.demo import BOOTSTRAP_FRACTION, DemoStack

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
REFLECT_MS = 15_000  # "within a few seconds": 0.2-0.9 s measured quiet; headroom for a loaded 2-core CI run


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM} (make test installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def busiest_backfilled_viewer(movielens_dir: Path) -> str:
    """The viewer with the most history in the backfill: certain to have top picks."""
    history, _ = split_history(load_ratings(movielens_dir), BOOTSTRAP_FRACTION)
    return Counter(r.user_id for r in history).most_common(1)[0][0]


def row_ids(page: object, row: str) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined]
        f'[data-row="{row}"] [data-testid=card]', "cards => cards.map(c => c.dataset.videoId)")


def test_watching_a_title_changes_the_page(browser: object, demo_stack: DemoStack, movielens_dir: Path) -> None:
    viewer = busiest_backfilled_viewer(movielens_dir)
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{demo_stack.base_url}/?user={viewer}")
    page.wait_for_selector('[data-row="top_picks"] [data-testid=card]', timeout=15_000)

    picks = row_ids(page, "top_picks")
    title = picks[0]
    page.click(f'[data-row="top_picks"] [data-video-id="{title}"]')
    page.click("[data-testid=watch-to-end]")
    page.wait_for_function(
        """id => !Array.from(document.querySelectorAll('[data-row="top_picks"] [data-testid=card]'))
                     .some(c => c.dataset.videoId === id)
              && document.querySelectorAll(`[data-row="because_you_watched"][data-seed="${id}"] [data-testid=card]`).length > 0""",
        arg=title, timeout=REFLECT_MS,
    )
    result = page.inner_text("[data-testid=action-result]")
    assert re.search(r"feed reflected it in \d+ ms", result), result
    print(f"\nwatch to the end -> {result}")
    neighbours = row_ids(page, "because_you_watched")
    assert neighbours and title not in neighbours

    page.keyboard.press("Escape")
    stopped = next(v for v in row_ids(page, "top_picks") if v != title)
    page.click(f'[data-row="top_picks"] [data-video-id="{stopped}"]')
    page.click("[data-testid=stop-halfway]")
    page.wait_for_selector(f'[data-row="continue_watching"] [data-video-id="{stopped}"]', timeout=REFLECT_MS)
    print(f"stop halfway -> {page.inner_text('[data-testid=action-result]')}")
    # The whole home page: every row type with cards, each card with a poster that loaded.
    page.keyboard.press("Escape")
    for row in ("continue_watching", "top_picks", "because_you_watched", "trending_now", "new_releases", "genre"):
        page.wait_for_selector(f'[data-row="{row}"] [data-testid=card]', timeout=REFLECT_MS)
    page.wait_for_function(
        """() => { const shown = Array.from(document.querySelectorAll('[data-row] [data-testid=card] img.poster'))
                     .filter(i => { const r = i.getBoundingClientRect();
                                    return r.bottom > 0 && r.top < innerHeight && r.left < innerWidth && r.right > 0; });
                   return shown.length > 0 && shown.every(i => i.complete && i.naturalWidth > 0); }""",
        timeout=REFLECT_MS)
    page.screenshot(path=str(demo_stack.demo_dir / "home-page.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_a_new_viewer_on_a_phone_starts_cold_and_warms_up(browser: object, demo_stack: DemoStack) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.goto(demo_stack.base_url + "/")
    page.click("[data-testid=new-user]")
    page.wait_for_selector("[data-row] [data-testid=card]", timeout=15_000)
    assert page.input_value("[data-testid=user-input]").startswith("guest-")
    assert not row_ids(page, "top_picks") and not row_ids(page, "because_you_watched")  # nothing known yet
    # Readable on a phone: the page itself never scrolls sideways (rows scroll inside themselves).
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    title = page.eval_on_selector("[data-row] [data-testid=card]", "c => c.dataset.videoId")
    page.click(f'[data-row] [data-video-id="{title}"]')
    page.click("[data-testid=watch-to-end]")
    page.wait_for_selector(f'[data-row="because_you_watched"][data-seed="{title}"] [data-testid=card]', timeout=REFLECT_MS)
    page.close()
