"""The AsyncAPI document of the topics: valid by the AsyncAPI parser, and true to the code.

The parser (`@asyncapi/parser`, pinned in tools/asyncapi/, installed by `make install`)
checks the document against the AsyncAPI 3 schema and rules and resolves its `$ref`s
to the exported JSON Schemas; these tests check what it cannot know: that the names,
partitions, keys, headers and groups are the ones the services use.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from normwacht.core.events import Municipality
from normwacht.schemas import rendered
from services.api.settings import ApiSettings
from services.notifier.settings import NotifierSettings
from services.shared.bindings import from_kafka_record, to_kafka_record
from services.shared.kafka import KafkaSettings
from services.sla_processor import due_records
from services.sla_processor.metrics import DEAD_LETTER_REASONS
from services.sla_processor.settings import ProcessorSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
DOCUMENT = SCHEMAS / "asyncapi.yaml"
TOOL = ROOT / "tools" / "asyncapi"


def check(document: Path) -> tuple[int, dict[str, Any]]:
    """Run the parser on `document`: its exit code and report."""
    node = shutil.which("node")
    if node is None or not (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("the AsyncAPI parser is not installed: run `make install` (needs Node.js)")
    done = subprocess.run(
        [node, str(TOOL / "check.js"), "--strict", str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"check.js printed no report (exit {done.returncode}): {done.stderr}")
    return done.returncode, report


def errors(report: dict[str, Any]) -> list[str]:
    return [
        f"{d['severity']} {d['code']} at /{'/'.join(map(str, d['path']))}: {d['message']}"
        for d in report["diagnostics"]
        if d["severity"] in ("error", "warning")
    ]


def default(settings: type[Any], field: str) -> Any:
    """A setting's default, whatever the environment of the test run says."""
    return settings.model_fields[field].default


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def file_refs(node: Any) -> Iterator[str]:
    """Every `$ref` to another file, anywhere in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                yield value
            else:
                yield from file_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from file_refs(item)


def test_the_parser_finds_no_errors_or_warnings() -> None:
    code, report = check(DOCUMENT)
    assert errors(report) == []
    assert code == 0
    assert report["valid"] is True


def test_channels_are_the_topics_the_services_use(document: dict[str, Any]) -> None:
    _, report = check(DOCUMENT)
    topics = {
        "events": default(KafkaSettings, "events_topic"),
        "outcomes": default(KafkaSettings, "outcomes_topic"),
        "deadLetters": default(KafkaSettings, "dead_letter_topic"),
    }
    assert report["channels"] == topics
    specs = KafkaSettings.model_construct()  # the defaults, not the environment
    for channel_id, topic in topics.items():
        binding = document["channels"][channel_id]["bindings"]["kafka"]
        assert binding["topic"] == topic
        assert binding["partitions"] == specs.topic_specs()[topic]
        assert binding["replicas"] == specs.replication_factor
    dead_letters = document["channels"]["deadLetters"]["bindings"]["kafka"]
    assert dead_letters["topicConfiguration"]["retention.ms"] == specs.dead_letter_retention_ms


def test_referenced_schema_files_are_the_exported_ones(document: dict[str, Any]) -> None:
    refs = set(file_refs(document))
    assert refs == {"./event.schema.json", "./outcome.schema.json"}
    for ref in refs:
        path = SCHEMAS / ref
        assert path.is_file(), ref
        assert path.read_text(encoding="utf-8") == rendered()[path.name], f"{ref} is stale"


def test_keys_headers_and_groups_are_those_of_the_code(document: dict[str, Any]) -> None:
    components = document["components"]
    event_schema = json.loads((SCHEMAS / "event.schema.json").read_text(encoding="utf-8"))
    subject = event_schema["$defs"]["CallQueued"]["properties"]["subject"]
    assert components["schemas"]["caseKey"]["pattern"] == subject["pattern"]
    binary = components["messages"]["binaryEvent"]["headers"]["properties"]
    assert binary["ce_subject"]["pattern"] == subject["pattern"]
    assert binary["ce_municipality"]["enum"] == [m.value for m in Municipality]
    assert components["messages"]["dueRecord"]["headers"]["required"] == [due_records.HEADER]
    value = due_records.write(b"key", "CALL-1", datetime(2026, 3, 2, tzinfo=UTC))
    assert sorted(json.loads(value)) == sorted(
        components["messages"]["dueRecord"]["payload"]["required"]
    )
    reasons = components["messages"]["deadLetter"]["headers"]["properties"]["normwacht-error"]
    assert reasons["enum"] == list(DEAD_LETTER_REASONS)
    groups = {
        name: operation["bindings"]["kafka"]["groupId"]["const"]
        for name, operation in document["operations"].items()
        if "groupId" in operation.get("bindings", {}).get("kafka", {})
    }
    assert groups == {
        "processorReceiveEvents": default(ProcessorSettings, "app_id"),
        "apiReceiveOutcomes": default(ApiSettings, "consumer_group"),
        "notifierReceiveOutcomes": default(NotifierSettings, "group_id"),
    }
    secure = document["components"]["securitySchemes"]["scram"]["type"]
    assert (secure, default(KafkaSettings, "sasl_mechanism")) == ("scramSha512", "SCRAM-SHA-512")


def test_the_examples_are_records_the_services_read_and_write(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    (structured,) = messages["structuredEvent"]["examples"]
    event = from_kafka_record(
        [(name, value.encode()) for name, value in structured["headers"].items()],
        json.dumps(structured["payload"]).encode(),
    )
    key, _, headers = to_kafka_record(event)  # what ingest writes: as described
    content_type = messages["structuredEvent"]["headers"]["properties"]["content-type"]
    assert re.match(content_type["pattern"], dict(headers)["content-type"].decode())
    assert re.match(document["components"]["schemas"]["caseKey"]["pattern"], key.decode())
    (binary,) = messages["binaryEvent"]["examples"]
    event = from_kafka_record(
        [(name, value.encode()) for name, value in binary["headers"].items()],
        json.dumps(binary["payload"]).encode(),
    )
    assert (event.type, event.subject, event.traceparent) == (
        binary["headers"]["ce_type"],
        binary["headers"]["ce_subject"],
        binary["headers"]["ce_traceparent"],
    )


BROKEN = {
    "unknown operation action": ("action: receive", "action: listen"),
    "payload refers to a missing file": ("./outcome.schema.json", "./outcomes.schema.json"),
    "channel reference to nowhere": ("$ref: '#/channels/outcomes'", "$ref: '#/channels/outcome'"),
    "unknown security scheme": ("type: scramSha512", "type: scramSha1024"),
}


@pytest.mark.parametrize(("old", "new"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_document_is_refused(tmp_path: Path, old: str, new: str) -> None:
    text = DOCUMENT.read_text(encoding="utf-8")
    assert old in text
    for schema in SCHEMAS.glob("*.json"):
        shutil.copy(schema, tmp_path)
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, report = check(broken)
    assert code != 0
    assert report["valid"] is False
    assert errors(report)
