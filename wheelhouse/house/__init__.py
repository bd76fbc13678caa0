"""The artifact: its contents and manifest, the directory put in place, static index, locks,
verify, merge, bundles (pack and unpack) and publishing to object storage."""
