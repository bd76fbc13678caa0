"""Offline vulnerability audit: an OSV snapshot fetched on the connected side, matched offline."""
