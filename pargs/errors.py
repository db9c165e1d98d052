"""The error users get for input they must fix: a config value, a data file, a model that does not fit.

The command line prints a :class:`ConfigError` (or one of its subclasses: :class:`pargs.records.RecordError`
for a bad record, :class:`SourceUnavailableError`) as one clear message and exits with status 1, instead
of a traceback from deep inside a library. Its message says what to change.
"""


class ConfigError(ValueError):
    """A configuration, data file or model the user must change (the message says how)."""


class SourceUnavailableError(ConfigError):
    """A dataset or model that could not be fetched (network, access, unknown name): the message says what to try."""
