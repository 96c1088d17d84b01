"""Prometheus metrics: one registry definition, an HTTP exporter and a Grafana dashboard."""
