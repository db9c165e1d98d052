"""The decoding rules by kind: a method's ``kind`` names the rule that decodes it.

:func:`pargs.decoding.engine.generate` looks the rule up here once per call and hands it the batch;
:class:`~pargs.decoding.methods.DecodeMethod` asks it whether the method needs a scorer
(``uses_scorer``) and to check the method's fields; the prediction module asks it for the FLOPs of a
response. The built-in rules are ``sample``, ``guided`` and ``best_of_n``, one module each under
``pargs/decoding/rules/``.

How to add a decoding rule
--------------------------
1. Write one module, e.g. ``pargs/decoding/rules/my_rule.py``, with a class decorated by
   ``@register("my_rule")``: a :class:`~pargs.decoding.rules.base.TokenRule` when the rule picks one
   token per step (implement ``step``), or a :class:`~pargs.decoding.rules.base.DecodeRule` when it
   works on whole responses (implement ``decode``, as ``best_of_n`` does). Set ``uses_scorer`` when its
   methods need a reward scorer, and give it a ``flops`` estimate from the models' shapes (the results
   table's GFLOPs per token). Range checks of its own go into ``check``. Set ``static_step = True`` when
   ``step`` uses device tensor operations only (no ``.item()`` / ``.tolist()``, no Python branch on a
   tensor's value, ``step`` may be a 0-dim tensor): then it also runs on the static (compiled) path of
   ``pargs/decoding/static_loop.py``, which ``path="auto"`` takes on CUDA for large models; otherwise it decodes
   eagerly.
2. Make sure the module is imported before a method names the kind: a built-in rule is one import line
   in ``pargs/decoding/rules/__init__.py``; a rule outside pargs registers when its module is imported.
3. Use it: one line in a predict config's ``methods``, ``{name: mine, kind: my_rule, ...}``, or
   ``DecodeMethod("mine", kind="my_rule")`` with ``generate``; a preset for it is one more entry of
   ``PRESETS`` in ``pargs/decoding/methods.py``.

A rule reads its parameters from the method's fields (``k``, ``beta``, ``temperature``, ...). A rule
that needs a parameter no method has yet adds a field to ``DecodeMethod``: a method's fields decide
what it decodes. ``tests/decoding/runner_up_rule.py`` is a complete rule in one file.

This module imports no rule (each rule imports it), so the imports stay one-way:
rules -> engine -> methods -> registry.
"""

from __future__ import annotations

from collections.abc import Callable

from pargs.errors import ConfigError

#: kind -> the rule object (an instance of a :class:`~pargs.decoding.rules.base.DecodeRule` subclass)
_RULES: dict[str, object] = {}


def register(kind: str) -> Callable[[type], type]:
    """Class decorator: decode the methods of ``kind`` with an instance of the decorated rule class."""

    def add(cls: type) -> type:
        known = _RULES.get(kind)
        if known is not None and _origin(type(known)) != _origin(cls):  # re-importing the same module is fine
            raise ConfigError(
                f"decoding kind {kind!r} is already registered by {_origin(type(known))}; "
                f"pick another name for {_origin(cls)}"
            )
        cls.kind = kind
        _RULES[kind] = cls()
        return cls

    return add


def rule_for(kind: str):
    """The rule registered for ``kind`` (a :class:`~pargs.decoding.rules.base.DecodeRule`)."""
    try:
        return _RULES[kind]
    except KeyError:
        raise ConfigError(
            f"unknown decoding kind {kind!r}; known: {kinds()} (a rule registers when its module "
            "is imported, see pargs/decoding/registry.py)"
        ) from None


def kinds() -> list[str]:
    """The registered kinds, sorted."""
    return sorted(_RULES)


def _origin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
