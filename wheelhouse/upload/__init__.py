"""A team's private index: uploads with twine and ``uv publish``, checked, stored and listed."""
