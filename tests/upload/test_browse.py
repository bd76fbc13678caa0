"""The pages for people: the root lists and searches the projects (SQLite FTS5), a project page
shows versions, files, hashes, yanks, the readme made safe and how to install it; driven in a
real headless Chromium, and attacked with SQL in the search box and script in a readme."""

from __future__ import annotations

import importlib.util
import io
import shutil
import urllib.request
import zipfile
from pathlib import Path

import pytest
from urllib3 import HTTPHeaderDict

from tests.support.capabilities import missing
from tests.support.credentials import basic
from tests.support.httpget import get
from tests.support.process import ServeProcess
from tests.support.upload import encode_form, post, upload_fields

README = """# Team package

Does *team* things. <script>window.pwned = 1</script>
<img src="x" onerror="window.pwned = 2">

[a link](javascript:alert(1)) and [a good one](https://example.invalid/docs)
"""


def wheel_with_readme(dest: Path, name: str, version: str, summary: str, readme: str) -> Path:
    """A wheel whose METADATA has a Summary and a Markdown readme as its body."""
    stem = f"{name.replace('-', '_')}-{version}"
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\nSummary: {summary}\n"
        "Requires-Python: >=3.9\nDescription-Content-Type: text/markdown\n\n" + readme
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{stem}.dist-info/METADATA", metadata)
        archive.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        archive.writestr(f"{stem}.dist-info/RECORD", "")
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{stem}-py3-none-any.whl"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def published(tmp_path: Path, private: ServeProcess) -> ServeProcess:
    for name, summary in [
        ("team-pkg", "Does team things"),
        ("other-tool", "A tool for builds"),
        ("third-lib", "Parsing helpers"),
    ]:
        wheel = wheel_with_readme(tmp_path / "dists", name, "1.0", summary, README)
        assert post(private, encode_form(upload_fields(wheel)), auth=basic())[0] == 200
    newer = wheel_with_readme(tmp_path / "dists", "team-pkg", "1.1", "Does team things", README)
    assert post(private, encode_form(upload_fields(newer)), auth=basic())[0] == 200
    return private


def _get(url: str) -> tuple[int, HTTPHeaderDict, str]:
    """``url``'s status, headers and text (an error status raises HTTPError)."""
    status, headers, body = get(url, check=True)
    return status, headers, body.decode()


def test_search_finds_by_name_and_summary(published: ServeProcess) -> None:
    _, _, page = _get(published.base + "?q=tool")
    assert '<a href="/-/project/other-tool/">other-tool</a> — A tool for builds' in page
    assert "team-pkg" not in page.split('id="projects"')[1]
    _, _, page = _get(published.base + "?q=parsing")
    assert "third-lib" in page and "other-tool" not in page.split('id="projects"')[1]


@pytest.mark.parametrize(
    "query", ["'; DROP TABLE project; --", '" OR 1=1 --', "team* NEAR(", "name:team", "%00\\"]
)
def test_a_search_with_sql_or_fts_syntax_is_only_words(published: ServeProcess, query: str) -> None:
    from urllib.parse import quote

    status, _, page = _get(published.base + "?q=" + quote(query))
    assert status == 200
    assert '<ul id="projects">' in page
    _, _, all_projects = _get(published.base)
    for name in ("team-pkg", "other-tool", "third-lib"):  # the catalog is intact
        assert f'href="/-/project/{name}/"' in all_projects


def test_a_readme_with_script_is_rendered_without_it(published: ServeProcess) -> None:
    _, headers, page = _get(published.base + "-/project/team-pkg/")
    assert "default-src 'none'" in headers["content-security-policy"]
    description = page.split('<div id="description">')[1].split("</div>")[0]
    assert "<h1>Team package</h1>" in description
    assert "<em>team</em>" in description
    assert "<script" not in description and "onerror" not in description
    assert 'href="javascript:' not in description
    assert 'href="https://example.invalid/docs"' in description
    assert page.index('id="v1.1"') < page.index('id="v1.0"')  # newest first
    assert "&gt;=3.9" in page  # Requires-Python


def test_a_yanked_file_is_marked_with_its_reason(tmp_path: Path, published: ServeProcess) -> None:
    from wheelhouse.upload.yank import yank_local

    yank_local(tmp_path / "private", "team_pkg-1.0-py3-none-any.whl", "broken <b>")
    _, _, page = _get(published.base + "-/project/team-pkg/")
    assert '<span class="yanked">yanked: broken &lt;b&gt;</span>' in page


def test_an_unknown_project_page_is_404(published: ServeProcess) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        _get(published.base + "-/project/nope/")
    assert raised.value.code == 404
    assert raised.value.read() == b"no such project\n"


@pytest.mark.slow
def test_a_person_searches_opens_a_project_and_follows_the_install_hint(
    tmp_path: Path, published: ServeProcess
) -> None:
    if importlib.util.find_spec("selenium") is None:
        missing("selenium", "selenium is not installed in the test environment")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing("chromium", "apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1000"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.set_page_load_timeout(60)
        browser.get(published.base)
        box = browser.find_element(By.NAME, "q")
        box.send_keys("team")
        box.submit()
        links = browser.find_elements(By.CSS_SELECTOR, "#projects a")
        assert [a.text for a in links] == ["team-pkg"]
        links[0].click()
        assert browser.find_element(By.TAG_NAME, "h1").text == "team-pkg 1.1"
        assert "Does team things." in browser.find_element(By.ID, "description").text
        assert browser.execute_script("return window.pwned === undefined") is True
        install = browser.find_element(By.ID, "install").text
        assert f"pip install --index-url {published.url} team-pkg" in install
        screenshot = tmp_path / "project-page.png"
        assert browser.save_screenshot(str(screenshot))
        assert screenshot.read_bytes().startswith(b"\x89PNG")
        browser.find_element(By.ID, "simple-page").click()
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "team_pkg-1.1-py3-none-any.whl" in body
    finally:
        browser.quit()
