"""The notifier's Prometheus metrics, defined once. No case ids in labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.shared.metrics import service_registry

DELAY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or service_registry()
        self.registry = registry
        r = registry
        self.posted = Counter(
            "normwacht_notifier_alerts_posted",
            "Alerts accepted by Alertmanager, by state (firing: opened or sent again).",
            ("alertname", "state"),
            registry=r,
        )
        self.post_failures = Counter(
            "normwacht_notifier_post_failures",
            "Posts to Alertmanager that failed (unreachable, or not 2xx); each is retried.",
            registry=r,
        )
        self.firing = Gauge(
            "normwacht_notifier_firing_alerts",
            "Alerts the notifier keeps firing (sends again every resend interval).",
            registry=r,
        )
        self.outcomes = Counter(
            "normwacht_notifier_outcomes",
            "Outcomes read from the outcomes topic, duplicates included.",
            ("kind",),
            registry=r,
        )
        self.delay = Histogram(
            "normwacht_notifier_notification_delay_seconds",
            "Wall time from a breach's deadline to its alert being accepted by Alertmanager.",
            buckets=DELAY_BUCKETS,
            registry=r,
        )
