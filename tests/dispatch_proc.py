"""A dispatcher in its own process, for the multi-process tests and the benchmark.

Started with multiprocessing's "spawn" context: nothing is inherited but the arguments.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend.db import make_engine
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import BatchResult, DispatchConfig, dispatch_once
from tests.fcmserver import local_fcm_app


def connect(url: str, schema: str | None) -> Any:
    if schema:
        return make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    return make_engine(url)


def run(
    url: str,
    schema: str | None,
    fcm_url_template: str,
    owner: str,
    at: datetime,
    batch_size: int,
    start: Any = None,
) -> dict[str, int]:
    """Dispatch at the fixed instant ``at`` until nothing is left to claim."""
    engine = connect(url, schema)
    channel = FcmChannel(local_fcm_app(fcm_url_template))
    config = DispatchConfig(batch_size=batch_size, lease=timedelta(minutes=10))
    total = BatchResult()
    if start is not None:
        start.wait()  # every process starts claiming at once
    while True:
        result = dispatch_once(engine, channel, owner, at, config)
        total += result
        if result.claimed == 0:
            break
    engine.dispose()
    return vars(total)
