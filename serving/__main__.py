"""``python -m serving``: run the feed service with the configuration from the environment."""

from __future__ import annotations

import logging

from aiohttp import web

from serving.app import create_app
from serving.settings import ServingConfig


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServingConfig.from_env()
    # No access log: one line per request costs more than the feed itself; /metrics counts them.
    web.run_app(create_app(config), host=config.host, port=config.port, access_log=None)


if __name__ == "__main__":
    main()
