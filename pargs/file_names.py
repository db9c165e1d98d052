"""Names chosen by users (methods, policies, scorers) as one safe component of a file or directory path.

A prediction line's ``method`` decides where ``pargs report`` writes (a TensorBoard run per method) and
``pargs judge`` names its output after the judged method. Joined as they are, an absolute name (``/home/x``)
replaces the directory it is joined to, ``..`` climbs out of it, and ``a/b`` makes a subdirectory. Every place
that turns such a name into a path goes through :func:`file_name`.
"""

from __future__ import annotations

import hashlib
import re

#: characters kept as they are; any other becomes ``_``
_UNSAFE = re.compile(r"[^A-Za-z0-9._+@=-]")
_MAX = 100


def file_name(name: str) -> str:
    """``name`` as one path component that stays inside the directory it is joined to: no separator, not
    ``.`` or ``..``, not hidden, not empty, at most 100 characters. A name that is already such a component
    (``top-k``, ``pargs@b1.5-k10``) is kept; another gets a short hash of the original appended, so two names
    never share a path (``a/b`` and ``a_b``)."""
    safe = _UNSAFE.sub("_", name).lstrip(".")[:_MAX]
    if safe and safe == name:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe or '_'}-{digest}"
