"""The HTTP side: serving wheelhouses."""
