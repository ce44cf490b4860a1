"""The processor under a kill -9, a rebalance, a replay, and disorderly input.

Every run reads the same stream of historical calls (an hour old, so every deadline
is decided by the watermark, not by the wall clock) and must end with exactly the
outcomes of one uninterrupted run: same ids, same content, none published twice
with a different meaning.

At-risk warnings are left out of the comparison: they are a live signal, published
only while a clock is still open when a worker looks at it, so how many a worker
catching up on a backlog sends depends on when its timer ran.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from services.shared.kafka import KafkaSettings
from services.sla_processor.main import STOP_TIMED_OUT
from tests.support.broker import free_port, running_broker
from tests.support.events import as_record
from tests.support.kafka_io import produce
from tests.support.scenario import NOTE_KINDS, an_hour_ago, calls, outcome_map
from tests.support.services import eventually, metric_sum, running_service, wait_healthy
from tests.support.system import create_topics, fresh_kafka, kafka_env

pytestmark = pytest.mark.integration

CALLS = 240


@dataclass(frozen=True)
class Topics:
    kafka: KafkaSettings
    app_id: str


def fresh_topics(bootstrap: str) -> Topics:
    kafka = fresh_kafka(bootstrap, prefix="r")
    app_id = f"normwacht-{kafka.events_topic.split('.')[0]}"
    create_topics(kafka, app_id)
    return Topics(kafka, app_id)


def processor(
    topics: Topics,
    workdir: Path,
    name: str,
    state: str | None = None,
    commit_interval_s: float = 2.8,
    instance_id: str | None = None,
    port: int | None = None,
    session_timeout_s: float = 8,
) -> Any:
    """A worker logging to `workdir/name/`, its state in `workdir/<state or name>-state`."""
    port = port or free_port()
    env = {
        **({"NORMWACHT_PROCESSOR_INSTANCE_ID": instance_id} if instance_id else {}),
        "NORMWACHT_PROCESSOR_COMMIT_INTERVAL_S": str(commit_interval_s),
        **kafka_env(topics.kafka),
        "NORMWACHT_PROCESSOR_APP_ID": topics.app_id,
        "NORMWACHT_PROCESSOR_DATA_DIR": str(workdir / f"{state or name}-state"),
        "NORMWACHT_PROCESSOR_WEB_PORT": str(port),
        "NORMWACHT_PROCESSOR_LOG_LEVEL": os.environ.get("NORMWACHT_TEST_LOG_LEVEL", "WARNING"),
        # A killed worker's partitions move after this long: keep the test short.
        "NORMWACHT_PROCESSOR_SESSION_TIMEOUT_S": str(session_timeout_s),
    }
    log_dir = workdir / name
    log_dir.mkdir(exist_ok=True)
    return running_service("processor", env, f"http://127.0.0.1:{port}/healthz", log_dir)


class Outcomes:
    """Everything on an outcomes topic, read by one consumer as it arrives."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=kafka.bootstrap, enable_auto_commit=False,
            isolation_level="read_committed",
        )  # fmt: skip
        tps = [TopicPartition(kafka.outcomes_topic, p) for p in range(kafka.partitions)]
        self._consumer.assign(tps)
        self._consumer.seek_to_beginning(*tps)
        self.values: list[bytes] = []
        self._ids: set[str] = set()

    def poll(self) -> int:
        """Read what came; returns how many distinct outcomes so far, warnings aside.

        Distinct: a worker restarted after a crash sends some outcomes again.
        """
        for records in self._consumer.poll(timeout_ms=200).values():
            for record in records:
                self.values.append(record.value)
                outcome = json.loads(record.value)
                if outcome["kind"] not in NOTE_KINDS:
                    self._ids.add(outcome["id"])
        return len(self._ids)

    def settle(self, at_least: int = 1, quiet_s: float = 6.0, timeout_s: float = 120.0) -> None:
        """Read until nothing new came for `quiet_s` (and at least `at_least` came)."""
        deadline = time.monotonic() + timeout_s
        last_change, count = time.monotonic(), -1
        while time.monotonic() < deadline:
            now_count = self.poll()
            if now_count != count:
                count, last_change = now_count, time.monotonic()
            elif count >= at_least and time.monotonic() - last_change > quiet_s:
                return
        ids = [json.loads(v)["id"] for v in self.values]
        repeated = sorted({i for i in ids if ids.count(i) > 1})[:10]
        raise AssertionError(f"outcomes did not settle: {count} so far; repeated: {repeated}")

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return calls(CALLS, an_hour_ago())


@pytest.fixture(scope="module")
def uninterrupted(
    kafka_bootstrap: str, stream: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """The outcomes of one worker reading the whole stream without a hitch."""
    topics = fresh_topics(kafka_bootstrap)
    produce(topics.kafka.bootstrap, topics.kafka.events_topic, [as_record(e) for e in stream])
    outcomes = Outcomes(topics.kafka)
    with processor(topics, tmp_path_factory.mktemp("uninterrupted"), "one"):
        outcomes.settle(at_least=2 * CALLS)
    outcomes.close()
    return outcome_map(outcomes.values)


def decisions(outcomes: dict[str, dict[str, Any]]) -> int:
    return sum(1 for o in outcomes.values() if o["kind"] not in NOTE_KINDS)


def assert_same(actual: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    """Equal outcome maps, warnings aside; otherwise show what is missing, extra or different."""
    actual = {k: v for k, v in actual.items() if v["kind"] not in NOTE_KINDS}
    expected = {k: v for k, v in expected.items() if v["kind"] not in NOTE_KINDS}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    different = [(actual[k], expected[k]) for k in sorted(set(actual) & set(expected))
                 if actual[k] != expected[k]]  # fmt: skip
    if missing or extra or different:
        Path("/tmp/resilience-diff.json").write_text(
            json.dumps({"missing": missing, "extra": extra, "different": different[:5]}, indent=1)
        )
    assert (missing, extra, different[:3]) == ([], [], [])


def decided(outcomes: dict[str, dict[str, Any]]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for outcome in outcomes.values():
        kinds[outcome["kind"]] = kinds.get(outcome["kind"], 0) + 1
    return kinds


def test_the_uninterrupted_run_decides_every_call(uninterrupted: dict[str, dict[str, Any]]) -> None:
    answer = {k: v for k, v in uninterrupted.items() if v["norm"] == "phone.answer"}
    kinds = decided(answer)
    # A quarter met, half breached (late answers and never answered), a quarter excluded.
    assert (kinds["met"], kinds["breached"], kinds["excluded"]) == (60, 120, 60)
    assert kinds["opened"] == CALLS


def committed(topics: Topics) -> int:
    """How many records the worker group has committed on the events topic."""
    admin = KafkaAdminClient(bootstrap_servers=topics.kafka.bootstrap)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                offsets = admin.list_group_offsets(topics.app_id)[topics.app_id]
                break
            except KafkaError:  # right after a kill the coordinator may not answer yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topics.kafka.events_topic)


@pytest.mark.parametrize(
    ("after_a_commit", "instance_id"),
    [(False, None), (True, None), (True, "worker-1")],
    ids=["before-any-commit", "after-a-commit", "after-a-commit-static-member"],
)
def test_a_kill_9_and_restart_loses_nothing_and_changes_nothing(
    kafka_bootstrap: str, stream: list[dict[str, Any]], uninterrupted: dict[str, dict[str, Any]],
    tmp_path: Path, after_a_commit: bool, instance_id: str | None,
) -> None:  # fmt: skip
    # With an instance id (Kafka static membership) the restarted worker replaces the
    # killed one in the group at once, instead of after the session timeout. It
    # restarts at the same address, as a StatefulSet's pod would. Its session timeout (85 s)
    # outlasts the 60 s the restarted worker has to settle: without static membership
    # the group would still be waiting for the killed member then, and the test fail.
    topics = fresh_topics(kafka_bootstrap)
    produce(topics.kafka.bootstrap, topics.kafka.events_topic, [as_record(e) for e in stream])
    outcomes = Outcomes(topics.kafka)
    # Without a commit the kill must come before the first: faust's commit timer starts
    # with the consumer, not with the first record, so any interval short enough to
    # matter could tick before a third of the stream on a slow machine.
    commit_interval_s = 0.1 if after_a_commit else 600
    worker = partial(
        processor,
        commit_interval_s=commit_interval_s,
        instance_id=instance_id,
        port=free_port(),
        session_timeout_s=85 if instance_id else 8,
    )
    with worker(topics, tmp_path, "first") as first:
        if after_a_commit:  # the restart resumes from that commit
            eventually(lambda: committed(topics) > 0, timeout_s=60, interval_s=0.01)
        else:  # the restart starts from the beginning
            eventually(lambda: outcomes.poll() > CALLS // 3, timeout_s=60, interval_s=0.05)
        os.kill(first.pid, signal.SIGKILL)  # mid-stream, without warning
    assert (committed(topics) > 0) == after_a_commit, "the kill came at another moment"
    with worker(topics, tmp_path, "restarted", state="first"):  # same app, same state
        outcomes.settle(at_least=decisions(uninterrupted), timeout_s=60)
    outcomes.close()
    assert_same(outcome_map(outcomes.values), uninterrupted)


def test_a_rebalance_between_two_workers_changes_nothing(
    kafka_bootstrap: str, stream: list[dict[str, Any]], uninterrupted: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    topics = fresh_topics(kafka_bootstrap)
    outcomes = Outcomes(topics.kafka)
    with processor(topics, tmp_path, "a"), ExitStack() as second:
        second.enter_context(processor(topics, tmp_path, "b"))  # both share the partitions
        # At once: the workers are already reading, and the events are an hour old.
        produce(topics.kafka.bootstrap, topics.kafka.events_topic,
                [as_record(e) for e in stream], at_once=True)  # fmt: skip
        eventually(lambda: outcomes.poll() > CALLS // 3, timeout_s=60, interval_s=0.05)
        second.close()  # b leaves mid-stream: its partitions and their state move to a
        outcomes.settle(at_least=decisions(uninterrupted))
    outcomes.close()
    assert_same(outcome_map(outcomes.values), uninterrupted)


def reported(port: int, metric: str) -> set[str]:
    """The partitions a worker's `metric` has a series for."""
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", params={"name[]": metric}).text
    prefix = f'{metric}{{partition="'
    return {
        line[len(prefix) :].split('"')[0] for line in page.splitlines() if line.startswith(prefix)
    }


def test_each_partition_is_reported_by_the_one_worker_that_holds_it(
    kafka_bootstrap: str, stream: list[dict[str, Any]], tmp_path: Path
) -> None:
    """After a rebalance a worker drops the series of the partitions it lost: one left
    behind would stand still, and page as a stalled partition (WatermarkStalled)."""
    topics = fresh_topics(kafka_bootstrap)
    every = {str(partition) for partition in range(topics.kafka.partitions)}
    produce(topics.kafka.bootstrap, topics.kafka.events_topic, [as_record(e) for e in stream],
            at_once=True)  # fmt: skip
    metrics = ("normwacht_processor_watermark_seconds", "normwacht_processor_consumer_lag")
    a, b = free_port(), free_port()

    def alone(metric: str) -> bool:
        return reported(a, metric) == every

    with processor(topics, tmp_path, "a", port=a):
        for metric in metrics:
            eventually(partial(alone, metric), timeout_s=60)
        with processor(topics, tmp_path, "b", port=b):

            def shared(metric: str) -> bool:
                held_by_a, held_by_b = reported(a, metric), reported(b, metric)
                return (
                    bool(held_by_a)
                    and bool(held_by_b)
                    and not held_by_a & held_by_b
                    and (held_by_a | held_by_b == every)
                )

            for metric in metrics:
                eventually(partial(shared, metric), timeout_s=60)


def test_a_replay_from_the_start_gives_the_outcomes_of_the_live_run(
    kafka_bootstrap: str, stream: list[dict[str, Any]], tmp_path: Path
) -> None:
    topics = fresh_topics(kafka_bootstrap)
    live = Outcomes(topics.kafka)
    with processor(topics, tmp_path, "live"):
        # Live: the events arrive in three bursts while the worker runs.
        records = [as_record(e) for e in stream]
        for part in range(3):
            produce(topics.kafka.bootstrap, topics.kafka.events_topic,
                    records[part * len(records) // 3 : (part + 1) * len(records) // 3])  # fmt: skip
            time.sleep(1.0)
        live.settle(at_least=2 * CALLS)
    live.close()
    # A new worker with no state reads the same topic (due-records included) from the
    # start, and writes to a topic of its own.
    replay_kafka = topics.kafka.model_copy(
        update={"outcomes_topic": topics.kafka.outcomes_topic + ".replay"}
    )
    replay_topics = Topics(replay_kafka, topics.app_id + "-replay")
    create_topics(replay_topics.kafka, replay_topics.app_id)
    replayed = Outcomes(replay_topics.kafka)
    with processor(replay_topics, tmp_path, "replay"):
        replayed.settle(at_least=decisions(outcome_map(live.values)))
    replayed.close()
    assert_same(outcome_map(replayed.values), outcome_map(live.values))


def test_late_out_of_order_and_repeated_events_end_as_the_orderly_stream(
    kafka_bootstrap: str, stream: list[dict[str, Any]], uninterrupted: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    rng = random.Random(5)
    disorderly = list(stream)
    # Swap neighbours (an answer may now come before its call was queued) ...
    for i in range(0, len(disorderly) - 1, 3):
        disorderly[i], disorderly[i + 1] = disorderly[i + 1], disorderly[i]
    # ... and send a tenth of the events twice, later.
    disorderly += rng.sample(stream, len(stream) // 10)
    topics = fresh_topics(kafka_bootstrap)
    produce(topics.kafka.bootstrap, topics.kafka.events_topic, [as_record(e) for e in disorderly])
    outcomes = Outcomes(topics.kafka)
    with processor(topics, tmp_path, "one"):
        outcomes.settle(at_least=2 * CALLS)
    outcomes.close()
    final = final_kinds(outcome_map(outcomes.values))
    assert final == final_kinds(uninterrupted)


def final_kinds(outcomes: dict[str, dict[str, Any]]) -> dict[tuple[str, str, int], str]:
    """Each clock's last decided kind: what a report counts."""
    final: dict[tuple[str, str, int], tuple[datetime, str]] = {}
    for o in outcomes.values():
        if o["kind"] in ("opened", *NOTE_KINDS):
            continue
        key = (o["subject"], o["norm"], o["instance"])
        corrected = o["corrects"] is not None
        if key not in final or corrected:
            final[key] = (datetime.fromisoformat(o["decided_at"]), o["kind"])
    return {k: kind for k, (_, kind) in final.items()}


def test_a_worker_told_to_stop_ends_even_when_its_broker_is_gone(tmp_path: Path) -> None:
    """faust's stop waits on the broker (a last commit, leaving the group) for as long as
    it takes; without a deadline, a SIGTERM after the broker had gone never ended it."""
    port, log_path = free_port(), tmp_path / "processor.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        with running_broker(tmp_path / "kafka") as bootstrap, log_path.open("wb") as log:
            topics = fresh_topics(bootstrap)
            env = {
                **os.environ,
                **kafka_env(topics.kafka),
                "NORMWACHT_PROCESSOR_APP_ID": topics.app_id,
                "NORMWACHT_PROCESSOR_DATA_DIR": str(tmp_path / "state"),
                "NORMWACHT_PROCESSOR_WEB_PORT": str(port),
                "NORMWACHT_PROCESSOR_STOP_TIMEOUT_S": "5",
                # Nothing committed before the stop: it has state and offsets to write.
                "NORMWACHT_PROCESSOR_COMMIT_INTERVAL_S": "600",
            }
            worker = subprocess.Popen([sys.executable, "-m", "normwacht", "processor"],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            wait_healthy(worker, f"{url}/healthz", log_path, timeout_s=90)
            events = calls(20, an_hour_ago())
            produce(bootstrap, topics.kafka.events_topic, [as_record(e) for e in events])
            eventually(partial(_processed, f"{url}/metrics", len(events)), timeout_s=60)
        # The broker is gone now.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=120) == STOP_TIMED_OUT
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "did not stop within 5 s" in log_path.read_text()


def _processed(url: str, events: int) -> bool:
    try:
        return metric_sum(url, "normwacht_processor_events_total") >= events
    except httpx.HTTPError:
        return False
