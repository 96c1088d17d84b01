"""Run profiles: typed, bounded, checked before any work starts (YAML under config/profiles/)."""
from __future__ import annotations

__all__ = ["Profile", "ProfileError", "load_profile"]


def __getattr__(name: str):
    # Lazy, so `from config.paths import data_dir` does not pull in pydantic and the schema.
    if name in __all__:
        from config import loader

        return getattr(loader, name) if name != "Profile" else loader.Profile
    raise AttributeError(f"module 'config' has no attribute {name!r}")
