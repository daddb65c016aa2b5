"""The one exception type users see: its message is a single line naming the problem and the fix."""


class TransferVizError(Exception):
    """A user-facing error: bad config, missing files, incompatible checkpoint or cache."""
