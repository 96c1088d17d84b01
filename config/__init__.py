"""Run profiles: typed, bounded, checked before any work starts (YAML under config/profiles/)."""
