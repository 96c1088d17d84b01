"""Supervision: restart budgets (policy), restart records, the Supervisor actor (supervisor) and the
Snapshotter an actor uses to write and restore its snapshot (snapshotting). Import the module you
need: this package file imports nothing, so the pure parts load without Ray."""
