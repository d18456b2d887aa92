"""The instruments modelrouter records, and the Views that give their histograms buckets."""

from __future__ import annotations

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from . import attributes as a


def views() -> list[View]:
    """Bucket boundaries: the GenAI conventions' for GenAI metrics, fine ones for routing."""
    buckets = {
        a.METRIC_OPERATION_DURATION: a.OPERATION_DURATION_BUCKETS,
        a.METRIC_TOKEN_USAGE: a.TOKEN_USAGE_BUCKETS,
        a.METRIC_CLASSIFIER_DURATION: a.ROUTING_DURATION_BUCKETS,
        a.METRIC_ROUTING_DURATION: a.ROUTING_DURATION_BUCKETS,
    }
    return [
        View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(list(bounds)))
        for name, bounds in buckets.items()
    ]


class RouterMetrics:
    """Every instrument, created once per meter provider."""

    def __init__(self, meter: Meter) -> None:
        self.operation_duration = meter.create_histogram(
            a.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of each call to a model provider (one per attempt).",
        )
        self.token_usage = meter.create_histogram(
            a.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Tokens a provider call used, by gen_ai.token.type (input or output).",
        )
        self.rpc_duration = meter.create_histogram(
            a.METRIC_RPC_DURATION,
            unit="ms",
            description="Duration of each ModelRouter call handled by the server.",
        )
        self.decisions = meter.create_counter(
            a.METRIC_DECISIONS,
            unit="{decision}",
            description="Routing decisions, by selected model, complexity, task type and RPC.",
        )
        self.cost = meter.create_counter(
            a.METRIC_COST,
            unit="USD",
            description="Actual cost of provider calls, from catalog prices and reported usage.",
        )
        self.fallbacks = meter.create_counter(
            a.METRIC_FALLBACKS,
            unit="{attempt}",
            description="Calls made to a fallback model (any model after the selected one).",
        )
        self.retries = meter.create_counter(
            a.METRIC_RETRIES,
            unit="{attempt}",
            description="Calls that repeated an earlier call to the same model.",
        )
        self.circuit_openings = meter.create_counter(
            a.METRIC_CIRCUIT_OPENINGS,
            unit="{opening}",
            description="Times a model's circuit opened (it cools down and is skipped).",
        )
        self.classifier_duration = meter.create_histogram(
            a.METRIC_CLASSIFIER_DURATION,
            unit="s",
            description="Time a classifier took to classify one request.",
        )
        self.routing_duration = meter.create_histogram(
            a.METRIC_ROUTING_DURATION,
            unit="s",
            description="Routing overhead: classification plus selection for one request.",
        )
        self.shadow_evaluations = meter.create_counter(
            a.METRIC_SHADOW_EVALUATIONS,
            unit="{evaluation}",
            description="Shadowed answers judged, by answering model, complexity and "
            "modelrouter.shadow.adequate: the live adequacy rate.",
        )
        self.shadow_quality_gap = meter.create_histogram(
            a.METRIC_SHADOW_QUALITY_GAP,
            unit="1",
            description="Judge score of the reference answer minus the routed answer's "
            "(-1..1; positive: the reference did better), by model and complexity.",
        )
        self.shadow_skipped = meter.create_counter(
            a.METRIC_SHADOW_SKIPPED,
            unit="{evaluation}",
            description="Sampled answers not evaluated, by modelrouter.shadow.skip_reason.",
        )
