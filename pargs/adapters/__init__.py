"""Dataset adapters: public preference releases -> the project's JSONL schema.

Every adapter is a function ``convert(source, split, out_path, *, ..., load=None) -> ConvertReport``
(they share :mod:`pargs.adapters.fields` to read a row's fields, :mod:`pargs.adapters.sources` to open a
release and :mod:`pargs.adapters.conversion` to count and write; ``data/<name>/prepare.py`` scripts use
:mod:`pargs.adapters.prepare_script`). A config names one by its registry key::

    from pargs.adapters import get_adapter
    report = get_adapter("hh_rlhf").convert("Anthropic/hh-rlhf", "train", "data/hh_rlhf/train.jsonl")
    print(report.summary())

The adapters read data with ``datasets`` and never import ``lightning``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pargs.adapters import generic, hh_rlhf, mt_post_edits, tldr, ultrafeedback
from pargs.adapters.conversion import ConvertReport
from pargs.adapters.fields import SourceError
from pargs.adapters.sources import LoadOptions
from pargs.errors import ConfigError

__all__ = ["ADAPTERS", "Adapter", "ConvertReport", "LoadOptions", "SourceError", "get_adapter"]


@dataclass(frozen=True)
class Adapter:
    """A registered dataset adapter."""

    name: str  #: registry key, also the default ``source`` field of its records
    convert: Callable[..., ConvertReport]  #: ``convert(source, split, out_path, *, ..., load=None)``
    hub_name: str | None  #: the public release on the Hugging Face Hub, if there is one
    splits: tuple[str, ...]  #: the splits of that release holding preference pairs


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        Adapter(hh_rlhf.NAME, hh_rlhf.convert, hh_rlhf.HUB_NAME, ("train", "test")),
        Adapter(tldr.NAME, tldr.convert, tldr.HUB_NAME, ("train", "validation")),
        Adapter(ultrafeedback.NAME, ultrafeedback.convert, ultrafeedback.HUB_NAME, ("train_prefs", "test_prefs")),
        Adapter(mt_post_edits.NAME, mt_post_edits.convert, None, ()),
        Adapter(generic.NAME, generic.convert, None, ()),
    )
}


def get_adapter(name: str) -> Adapter:
    """The adapter registered as ``name``; a clear error lists the known names otherwise."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset adapter {name!r}: choose one of {', '.join(sorted(ADAPTERS))}") from None
