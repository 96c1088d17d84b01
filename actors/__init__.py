"""Ray actors: thin shells around the domain (decode, call the domain, publish)."""
