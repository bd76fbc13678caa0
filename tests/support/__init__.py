"""Builders, servers and helpers shared by tests and benchmarks (fixtures stay in conftest).

One helper per job; look here before writing one:

- dists.py: tiny real wheels and sdists. wheelhouses.py: a wheelhouse by hand (``make_wheelhouse``
  and its records, locks, manifest); fixtures.py: a real build of one, once per module.
- files.py: a file's sha256, a folder's bytes (``snapshot``) or identities (``entries``).
- server.py: the loopback index (``IndexServer``); loopback.py: a server whose answers are
  scripts (cut, dripped, ranged); hostile.py: hostile pages and bodies; tls.py: a CA and a
  CONNECT proxy; nginx.py, s3.py: real nginx and SeaweedFS.
- process.py: a command run to its end, clean environments, free ports, `wheelhouse serve`
  (``ServeProcess``), ``wait_until``; httpget.py: one GET; venvs.py: venvs and what they hold.
- fixtures.py ``private_tmpdir``: a TMPDIR of a test's own; tmpguard.py: the check that no test
  starts a process, or makes a temporary name, outside pytest's basetemp (that is, in /tmp).
- proxy.py, upload.py, credentials.py, cli.py, graph.py, targets.py, osv.py, provenance.py,
  pinned.py, locktools.py, capabilities.py: what one area's tests share.

Benchmarks import this package too, and ``nox -s bench`` installs no pytest: what they import
imports pytest only inside a function (tests/test_support_imports.py checks it).
"""
