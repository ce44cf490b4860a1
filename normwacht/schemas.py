"""Exports the event and outcome models as JSON Schema files into `schemas/`."""

from __future__ import annotations

import json
from pathlib import Path

from normwacht.core.engine import Outcome
from normwacht.core.events import event_json_schema


def _schemas() -> dict[str, dict[str, object]]:
    event = event_json_schema()
    return {
        "event.schema.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Normwacht event (CloudEvents 1.0, structured mode)",
            **event,
        },
        "event-batch.schema.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Normwacht event batch (application/cloudevents-batch+json)",
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "event.schema.json"},
        },
        "outcome.schema.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Normwacht outcome (a record on the outcomes topic)",
            **Outcome.model_json_schema(mode="serialization"),
        },
    }


def rendered() -> dict[str, str]:
    return {
        name: json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in _schemas().items()
    }


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of exported files that differ from the models (or are missing)."""
    return [
        name
        for name, text in rendered().items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]
