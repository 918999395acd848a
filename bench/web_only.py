"""The router's web app and store without its workers: what ingest alone costs.

python bench/web_only.py PORT     # settings from ROUTER_* as for ``serve``
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from router import heap
from router.config import load_settings
from router.metrics import Metrics
from router.store import open_store
from router.web.app import create_app


async def main(port: int) -> None:
    settings = load_settings()
    store = await open_store(settings.database_url)
    app = create_app(settings, store, Metrics())
    config = uvicorn.Config(app, port=port, log_level="warning", access_log=False, lifespan="off")
    heap.settle()  # as serve does
    try:
        await uvicorn.Server(config).serve()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
