"""``pargs study``: every claim of the paper tested across seeds on the embedded synthetic task.

One module per idea: :mod:`~pargs.study.grids` (what is tuned and how), :mod:`~pargs.study.plan` (sizes and
budgets), :mod:`~pargs.study.ledger` (what produced each step; resume and refusal), :mod:`~pargs.study.pipeline`
(the steps of a seed), :mod:`~pargs.study.tuning` (the choice on the validation prompts),
:mod:`~pargs.study.evidence` (the numbers and the claims tested on them), :mod:`~pargs.study.report`
(Markdown, CSV, figures), :mod:`~pargs.study.progress` and :mod:`~pargs.study.command` (the command line).
The statistics and the verdict rule are :mod:`pargs.metrics.claims` (no Lightning).

Nothing is imported here, so ``pargs study --help`` stays fast.
"""
