"""One GET as a test makes it, from outside the code under test: status, headers, body."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import NamedTuple

from urllib3 import HTTPHeaderDict


class Response(NamedTuple):
    """What the server answered; header names are looked up in any case."""

    status: int
    headers: HTTPHeaderDict
    data: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx is the answer


def get(
    url: str,
    accept: str | None = None,
    *,
    redirects: bool = True,
    timeout: float = 30.0,
    check: bool = False,
    **headers: str,
) -> Response:
    """GET ``url`` (with ``Accept: accept`` and ``headers``); an error status is an answer too,
    or with ``check`` raises urllib's HTTPError. Without ``redirects``, a 3xx is the answer."""
    if accept is not None:
        headers["Accept"] = accept
    request = urllib.request.Request(url, headers=headers)
    # Straight to the URL: a proxy in the environment is for the code under test, if any.
    handlers = [urllib.request.ProxyHandler({}), *([] if redirects else [_NoRedirect()])]
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Response(
                response.status, HTTPHeaderDict(response.headers.items()), response.read()
            )
    except urllib.error.HTTPError as exc:
        if check:
            raise
        status, found, data = exc.code, exc.headers, exc.read()
    return Response(status, HTTPHeaderDict(found.items()), data)
