"""The framework's error for settings and inputs that cannot be used."""


class UsageError(ValueError):
    """A setting or an input cannot be used; the message says what to do.

    The command line prints it as one line. A `ValueError`, so code that
    caught the framework's `ValueError`s still does.
    """


class ModelSourceError(UsageError):
    """MODEL of `predict` or `export` (or a flag that goes with it, such as
    `--task` or `--class-names`) cannot be used."""
