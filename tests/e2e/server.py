"""A real LeadRelay server for the HTTP tests: uvicorn on a free loopback port, in a thread of
the test process, on a fresh database (SQLite or PostgreSQL), with a write and an admin key."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from sqlalchemy import Engine

from leadrelay.bootstrap import App, bootstrap
from leadrelay.config import Settings
from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.entrypoints.api import create_app
from leadrelay.services.api_keys import create_key

STARTUP_TIMEOUT = 20.0


@dataclass
class Server:
    url: str
    app: App
    write_key: str
    admin_key: str

    def admin(self) -> httpx.Client:
        """A client of the REST API, with the admin key."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30)

    def tracker(self) -> httpx.Client:
        """A client of the tracking API, with the write key as HTTP Basic user (as Segment libraries send it)."""
        return httpx.Client(base_url=self.url, auth=(self.write_key, ""), timeout=30)


@contextmanager
def running_server(engine: Engine, playbook: Playbook, **settings: object) -> Iterator[Server]:
    app = bootstrap(Settings(database_url=str(engine.url), **settings), engine=engine, playbook=playbook,
                    create_schema=False)
    write_key, _ = create_key(app.uow(), name="website", scope="write", now=utc_now())
    admin_key, _ = create_key(app.uow(), name="admin", scope="admin", now=utc_now())
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"http://127.0.0.1:{port}", app, write_key, admin_key)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
