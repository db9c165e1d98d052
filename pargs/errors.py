"""The error users get for input they must fix: a config value, a data file, a model that does not fit.

The command line prints a :class:`ConfigError` (or one of its subclasses: :class:`pargs.records.RecordError`
for a bad record, :class:`SourceUnavailableError`) as one clear message and exits with status 1, instead
of a traceback from deep inside a library. Its message says what to change. :class:`Stopped` is the one
exception here that is no error: a command stopped on request.
"""


class ConfigError(ValueError):
    """A configuration, data file or model the user must change (the message says how)."""


class SourceUnavailableError(ConfigError):
    """A dataset or model that could not be fetched (network, access, unknown name): the message says what to try."""


class Stopped(SystemExit):
    """A command stopped at a safe point because SIGTERM or SIGINT asked it to (:mod:`pargs.commands.signals`).

    Not an error: nothing is wrong with the input. It is a ``SystemExit`` (as Lightning's own
    ``SIGTERMException`` is), so no ``except Exception`` swallows it, and its exit status is 128 + the
    signal's number (143 for SIGTERM, 130 for SIGINT) even where nothing catches it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
