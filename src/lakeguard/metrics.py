"""Prometheus metrics of transfers, in a registry of their own.

The registry is not prometheus_client's global one, so importing lakeguard as
a library never adds series to a host application's ``/metrics``. Batch runs
export it with ``write_textfile`` for node-exporter's textfile collector.
prometheus_client is imported on first use: ``lakeguard --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

# Per-object copy time: from a few ms (small objects, server-side) to minutes.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


@dataclass(frozen=True, slots=True)
class _Instruments:
    registry: Any
    bytes: Any
    objects: Any
    errors: Any
    retries: Any
    duration: Any
    throughput: Any


@functools.cache
def _instruments() -> _Instruments:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    mode = ["mode"]  # "server_side" or "stream"
    return _Instruments(
        registry=registry,
        bytes=Counter("lakeguard_transfer_bytes", "Bytes copied.", mode, registry=registry),
        objects=Counter("lakeguard_transfer_objects", "Objects copied.", mode, registry=registry),
        errors=Counter(
            "lakeguard_transfer_errors", "Objects that failed to copy.", registry=registry
        ),
        retries=Counter(
            "lakeguard_transfer_retries", "Store calls and objects retried.", registry=registry
        ),
        duration=Histogram(
            "lakeguard_transfer_duration_seconds",
            "Time to copy one object.",
            buckets=_DURATION_BUCKETS,
            registry=registry,
        ),
        throughput=Gauge(
            "lakeguard_transfer_last_run_bytes_per_second",
            "Throughput of the most recent transfer run.",
            registry=registry,
        ),
    )


def registry() -> Any:
    """The CollectorRegistry holding lakeguard's metrics."""
    return _instruments().registry


def record_object(*, nbytes: int, seconds: float, server_side: bool) -> None:
    metrics = _instruments()
    mode = "server_side" if server_side else "stream"
    metrics.bytes.labels(mode).inc(nbytes)
    metrics.objects.labels(mode).inc()
    metrics.duration.observe(seconds)


def record_error() -> None:
    _instruments().errors.inc()


def record_retries(count: int) -> None:
    if count > 0:
        _instruments().retries.inc(count)


def record_run(bytes_per_s: float) -> None:
    _instruments().throughput.set(bytes_per_s)


def write_textfile(path: str | os.PathLike[str]) -> None:
    """Write every metric to ``path`` in the textfile-collector format (atomically)."""
    from prometheus_client import write_to_textfile

    write_to_textfile(os.fspath(path), registry())


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of one sample (0.0 when absent): for reports and tests."""
    value = registry().get_sample_value(name, labels or {})
    return float(value) if value is not None else 0.0
