"""Files from an index into the content-addressed cache, each verified against its sha256."""
