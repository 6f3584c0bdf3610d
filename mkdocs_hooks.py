"""MkDocs hooks for the manual: docstrings name Python objects with Sphinx roles (``:func:`compress```), which the
API reference shows as the object's name alone."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    """The page's HTML without the role prefixes in front of code spans."""
    return _ROLE.sub("", html)
