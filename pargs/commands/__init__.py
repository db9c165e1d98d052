"""The ``pargs`` commands that have no module of their own, and the LightningCLI runner they share.

:mod:`pargs.cli` maps each command name to a ``main(argv)`` and imports it only when that command runs:
``report``, ``prefix-agreement`` and ``prepare-synthetic`` live here, ``quickstart``, ``sweep`` and
``judge`` in :mod:`pargs.quickstart`, :mod:`pargs.sweep` and :mod:`pargs.judging`. Every ``main``
parses its arguments before it imports torch, so ``--help`` answers at once.
"""
