"""Hide secrets (bot tokens, webhook URLs) in any text before it is logged, raised or sent."""
from __future__ import annotations

import json
from typing import Iterable

MASK = "***"


class Masker:
    """Replaces every known secret, raw or JSON-escaped, with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = set()
        for secret in secrets:
            if secret:
                forms.add(secret)
                forms.add(json.dumps(secret)[1:-1])   # as it appears inside a JSON string
        # Longest first, so a secret that contains another is hidden whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._forms)
