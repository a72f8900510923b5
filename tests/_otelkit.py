"""OpenTelemetry test fixtures: spans recorded in memory (for the otel tests of one node and of several).

Import the fixtures into a test module (``from _otelkit import exporter,
provider``); the module must have skipped already where the ``otel`` extra is
not installed.
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["exporter", "provider"]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Where the spans end up (``exporter.get_finished_spans()``)."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A tracer provider that hands every finished span to ``exporter`` at once."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider
