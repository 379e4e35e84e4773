"""Prometheus metrics for the worker, hand-written (text exposition format 0.0.4).

Three kinds are enough here and keep the worker free of another dependency: counters,
gauges and histograms, each with optional labels. Everything is updated from the event
loop or under a lock, so batcher threads may observe too.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from a few ms (a tiny member on a GPU) to a minute (a big page on a busy CPU).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {list(self.label_names)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> Iterable[str]:  # pragma: no cover - abstract
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterable[str]:
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = ()
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets or LATENCY_BUCKETS))
        # Per label set: (count per bucket (non-cumulative, + one for +Inf), sum).
        self._values: dict[LabelValues, tuple[list[int], float]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._values.get(key, ([0] * (len(self.buckets) + 1), 0.0))
            index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
            counts[index] += 1
            self._values[key] = (counts, total + value)

    def count(self, **labels: str) -> int:
        entry = self._values.get(self._key(labels))
        return sum(entry[0]) if entry else 0

    def samples(self) -> Iterable[str]:
        with self._lock:
            items = sorted((k, (list(c), s)) for k, (c, s) in self._values.items())
        for key, (counts, total) in items:
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {running}"
            yield f"{self.name}_sum{_labels(self.label_names, key)} {_number(total)}"
            yield f"{self.name}_count{_labels(self.label_names, key)} {running}"


class WorkerMetrics:
    """Every metric the worker exports; one instance per app."""

    def __init__(self) -> None:
        p = "colorbot_worker_"
        self.requests = Counter(
            p + "requests_total", "HTTP requests by route and status.", ("route", "status")
        )
        self.request_seconds = Histogram(
            p + "request_seconds", "HTTP request latency by route.", ("route",)
        )
        self.queue_depth = Gauge(
            p + "queue_depth", "Pages admitted and waiting for a batch, per member.", ("member",)
        )
        self.batch_size = Histogram(
            p + "batch_size", "Pages per network call, per member.", ("member",), BATCH_SIZE_BUCKETS
        )
        self.batch_seconds = Histogram(
            p + "batch_seconds", "Wall time of one batched run_member call.", ("member",)
        )
        self.queue_seconds = Histogram(
            p + "queue_wait_seconds", "Time a page waited in the queue.", ("member",)
        )
        self.prepare_seconds = Histogram(p + "prepare_seconds", "Page load + prepare time.")
        self.batch_failures = Counter(
            p + "batch_failures_total", "Batches that raised.", ("member",)
        )
        self.rejected = Counter(
            p + "rejected_total", "Requests refused before work: full queue or draining.",
            ("reason",),
        )
        self.reloads = Counter(p + "family_reloads_total", "Family reloads.", ("result",))
        self.ready = Gauge(p + "ready", "1 when the family is loaded and not draining.")
        self.in_flight = Gauge(p + "in_flight_requests", "Colorize requests being served.")

    def all(self) -> list[_Metric]:
        return [v for v in vars(self).values() if isinstance(v, _Metric)]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"
