"""The artifact: manifest, directory, static index, locks, verify and merge."""
