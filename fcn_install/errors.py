"""The installer's one exception type."""


class SetupError(Exception):
    """A refusal or failure; its message is the one-line reason shown."""
