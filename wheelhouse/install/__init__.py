"""Hermetic offline installs from a wheelhouse."""
