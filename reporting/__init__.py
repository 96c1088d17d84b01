"""Outputs a person reads: the self-contained HTML report and the rich terminal views."""
