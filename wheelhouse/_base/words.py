"""Counted nouns for messages: "1 file", "2 files", never "1 files"."""

__all__ = ["count"]


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun that fits it: ``count(1, "wheel")`` is "1 wheel", 2 gives "2 wheels"."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
