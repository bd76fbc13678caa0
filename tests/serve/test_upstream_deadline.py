"""An upstream that drips its answer a byte at a time: every call fails at its timeout, a
deadline for the whole call, not a limit on each read."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.hostile import (
    Dripper,
    within,
)
from tests.support.proxy import StartProxy
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.errors import UpstreamError
from wheelhouse.serve._upstream import fetch_wheel_metadata, open_file
from wheelhouse.simple import PageFile, fetch_project_page


@pytest.fixture
def dripper(request: pytest.FixtureRequest) -> Iterator[Dripper]:
    server = Dripper(headers=request.param == "headers")
    yield server
    server.stop()


@pytest.mark.parametrize("dripper", ["headers", "body"], indirect=True)
def test_a_dripping_page_fails_at_the_deadline(dripper: Dripper) -> None:
    client = HttpClient(PipSettings())
    raised, took = within(30, lambda: fetch_project_page(client, dripper.url, "drip", timeout=2))
    assert isinstance(raised, UpstreamError), raised
    assert raised.message == f"{dripper.url}drip/ did not answer within 2 s"
    assert took < 10, took  # 2 s, on a loaded machine


@pytest.mark.parametrize("dripper", ["headers", "body"], indirect=True)
def test_a_dripping_metadata_file_fails_at_the_deadline(dripper: Dripper) -> None:
    client = HttpClient(PipSettings())
    url = dripper.url + "drip-1.0-py3-none-any.whl"
    file = PageFile("drip-1.0-py3-none-any.whl", url, core_metadata=True)
    raised, took = within(30, lambda: fetch_wheel_metadata(client, file, timeout=2))
    assert isinstance(raised, UpstreamError), raised
    assert raised.message.endswith("did not answer within 2 s"), raised.message
    assert took < 10, took


@pytest.mark.parametrize("dripper", ["headers"], indirect=True)
def test_open_file_fails_at_the_deadline_when_headers_drip(dripper: Dripper) -> None:
    client = HttpClient(PipSettings())
    raised, took = within(30, lambda: open_file(client, dripper.url + "f.whl", timeout=2))
    assert isinstance(raised, UpstreamError), raised
    assert took < 10, took


@pytest.mark.parametrize("dripper", ["body"], indirect=True)
def test_the_proxy_answers_504_at_its_timeout_for_a_dripping_page(
    dripper: Dripper, start_proxy: StartProxy
) -> None:
    proxy = start_proxy("--upstream", dripper.url, "--timeout", "2")
    started = time.monotonic()
    status, _, body = proxy.get("/simple/drip/")
    took = time.monotonic() - started
    # The proxy's own deadline (--timeout) answers first: a gateway timeout, not a bad answer.
    assert status == 504, body
    assert body == b"upstream did not answer for drip within --timeout 2 s\n"
    assert took < 12, took
