"""Domain errors. Each one carries a message that tells the user what to do.

They subclass ValueError so library callers can catch bad input the usual way; the CLI turns
them into one line and exit code 2, the server into a JSON error with a 4xx status.
"""


class EdgewiseError(ValueError):
    """Bad input or environment, with a fix hint in the message."""


class ModelNotFoundError(EdgewiseError):
    pass


class CorruptModelError(EdgewiseError):
    pass


class UnsupportedModelError(EdgewiseError):
    pass


class OfflineError(EdgewiseError):
    pass


class PromptTooLongError(EdgewiseError):
    """A prompt that does not fit the model's context; never silently truncated."""

    def __init__(self, n_tokens: int, limit: int):
        self.n_tokens, self.limit = n_tokens, limit
        super().__init__(
            f"prompt is {n_tokens} tokens but the context holds {limit} (including new tokens): "
            "shorten the prompt or lower --max-tokens"
        )


class BackendUnavailableError(EdgewiseError):
    pass
