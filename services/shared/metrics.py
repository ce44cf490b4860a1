"""What every service's Prometheus registry holds besides its own metrics."""

from __future__ import annotations

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry


def service_registry() -> CollectorRegistry:
    """A registry of its own (tests run several services in one process), with the process's
    memory, CPU and garbage collection, as the default registry would have them."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry
