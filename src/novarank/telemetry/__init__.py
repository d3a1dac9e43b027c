"""Telemetry: typed event schemas, the non-blocking emitter, sinks and the stream ingester."""
