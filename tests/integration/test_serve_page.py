"""The page for people in a real browser: Debian's headless Chromium, driven by Playwright,
loads ``/``, searches, follows an image to its own page; screenshots go to tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.factory import docker_save, layer
from tests.integration.peers import require
from tests.integration.test_serve import Serving

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[object]:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_the_page_lists_finds_and_shows_an_image(run: Run, browser: object, tmp_path: Path) -> None:
    shared = layer({"base.txt": b"base\n"})
    tar = docker_save(
        tmp_path / "images.tar",
        [
            (["registry.example/team/web:1.0"], [shared, layer({"web": b"web\n"})]),
            (["docker.io/library/db:15"], [shared, layer({"db": b"db\n"})]),
        ],
    )
    bundle = tmp_path / "images.tar.zst"
    assert run("pack", tar, "-o", bundle).code == 0
    server = Serving(tmp_path / "serve.log", str(bundle))
    try:
        _browse(server, browser, tmp_path)
    finally:
        assert server.stop() == 0


def _browse(server: Serving, browser: object, tmp_path: Path) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"http://{server.host}/")
    assert page.title() == "archiver serve"
    assert page.locator("#count").inner_text() == "2 images"
    assert page.locator("tbody tr").count() == 2
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

    page.fill("input[name=q]", "team/web")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "q=team%2Fweb" in page.url
    assert page.locator("#count").inner_text() == "1 of 2 images"
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "1 of 2" in rows.first.inner_text()  # the base is shared
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

    page.click("text=team/web")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "team/web"
    assert page.locator("table.layers tbody tr, table.layers tr").count() >= 2
    assert "layer 1" in page.locator("table.history").inner_text()
    assert f"docker pull {server.host}/team/web@sha256:" in page.content()
    page.screenshot(path=str(tmp_path / "image.png"), full_page=True)
    for name in ("index.png", "search.png", "image.png"):
        assert (tmp_path / name).stat().st_size > 1000
