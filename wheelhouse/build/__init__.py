"""Requirements in, resolved, fetched and built: the build pipeline."""
