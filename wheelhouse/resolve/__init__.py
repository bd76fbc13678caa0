"""Requirements or a lock -> the pinned files of each target: by pip's resolver, by uv's for
foreign targets, from complete pins without a resolver, or straight from a lock file."""
