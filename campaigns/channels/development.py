"""Backends for development: show the message instead of sending it."""

import json
import sys
import threading
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings

from campaigns.channels.base import ChannelBackend, Delivery


def _as_json(delivery: Delivery, message_id: str) -> str:
    return json.dumps(
        {
            "id": message_id,
            "channel": delivery.channel,
            "to": delivery.to,
            "platform": delivery.platform,
            "reference": delivery.reference,
            "headers": dict(delivery.headers),
            "message": asdict(delivery.message),
        },
        ensure_ascii=False,
        indent=2,
        default=str,
    )


class ConsoleBackend(ChannelBackend):
    """Writes each message to standard output (development only: it shows personal data)."""

    def __init__(self, stream: Any = None, **options: Any) -> None:
        super().__init__(**options)
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> str:
        message_id = f"console-{uuid.uuid4().hex}"
        stream = self.stream or sys.stdout
        with self._lock:
            stream.write(_as_json(delivery, message_id) + "\n" + "-" * 79 + "\n")
            stream.flush()
        return message_id


class FileBackend(ChannelBackend):
    """Writes each message as a JSON file under ``directory`` (var/messages/<channel>)."""

    def __init__(self, directory: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.directory = Path(directory) if directory else None

    def send(self, delivery: Delivery) -> str:
        directory = (
            self.directory or Path(settings.BASE_DIR) / "var" / "messages" / delivery.channel
        )
        directory.mkdir(parents=True, exist_ok=True)
        message_id = f"file-{uuid.uuid4().hex}"
        (directory / f"{message_id}.json").write_text(_as_json(delivery, message_id), "utf-8")
        return message_id
