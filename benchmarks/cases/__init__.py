"""The benchmark cases, one module per case or group; each times wheelhouse and a baseline."""
