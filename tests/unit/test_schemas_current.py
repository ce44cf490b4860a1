from __future__ import annotations

from pathlib import Path

from normwacht.schemas import rendered, stale

SCHEMAS = Path(__file__).parents[2] / "schemas"


def test_exported_schemas_match_the_models() -> None:
    assert stale(SCHEMAS) == [], "run `make schemas` and commit the result"


def test_every_phone_event_type_is_in_the_exported_schema() -> None:
    text = rendered()["event.schema.json"]
    for kind in ("queued", "answered", "abandoned", "transferred", "ended"):
        assert f'"nl.buch.call.{kind}"' in text
