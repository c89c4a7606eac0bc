"""``python -m serving``: run the feed service with the configuration from the environment."""

from __future__ import annotations

import logging

from aiohttp import web

from serving.app import create_app
from serving.runtime import settle_collector_on_startup
from serving.settings import ServingConfig


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServingConfig.from_env()
    app = create_app(config)
    settle_collector_on_startup(app, config.gc_threshold)
    # No access log: one line per request costs more than the feed itself; /metrics counts them.
    web.run_app(app, host=config.host, port=config.port, access_log=None)


if __name__ == "__main__":
    main()
