"""The keyboard page: its JSON API in-process, and the page itself typed into by headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine, PersonalStore
from edgewise.apps.keyboard.web import create_app

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
# Per the machine notes: without the background-networking flags Chromium keeps dialling out.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def web_engine(keyboard_lm, tmp_path):
    store = PersonalStore(tmp_path / "p.sqlite")
    return KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10), personal=store)


def test_api_suggest_accept_info_forget(web_engine):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(web_engine, model_label="tiny"))
    page = client.get("/")
    assert page.status_code == 200 and "Edgewise Keyboard" in page.text
    assert client.get("/static/app.js").status_code == 200
    r = client.post("/api/suggest", json={"text": "The quick brown ", "session": "a"}).json()
    assert r["suggestions"][0] == "fox" and r["latency_ms"] >= 0
    r = client.post("/api/accept", json={"text": "The quick brown f", "word": "fox", "session": "a"}).json()
    assert r["text"] == "The quick brown fox " and r["learned"] == ["fox"]
    info = client.get("/api/info").json()
    # "The quick brown" arrived as new text (a paste, to the session), then "fox" was accepted: 4 words.
    assert info["model"] == "tiny" and info["personal_words"] == 4 and info["learning"] is True
    assert client.post("/api/forget").json() == {"personal_words": 0}
    assert client.post("/api/suggest", json={"text": "x" * 20_001}).status_code == 422


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(web_engine):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(web_engine, model_label="tiny test LM"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    t.join(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_page_in_headless_chromium(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="needs the test extra's playwright: pip install -e '.[test]'")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(served)
            box = page.locator("#input")
            box.click()
            box.press_sequentially("The quick brown ", delay=20)
            best = page.locator('.chip[data-rank="0"]')
            sync_api.expect(best).to_have_text("fox", timeout=20_000)
            best.click()  # accept the suggestion
            sync_api.expect(box).to_have_value("The quick brown fox ", timeout=10_000)
            box.press_sequentially("jumps over the lazy d", delay=20)
            sync_api.expect(best).to_have_text("dog", timeout=20_000)
            box.press("Tab")  # Tab accepts the best suggestion too
            sync_api.expect(box).to_have_value("The quick brown fox jumps over the lazy dog ", timeout=10_000)
            sync_api.expect(page.locator("#learned")).not_to_have_text("–", timeout=10_000)
            shot = Path(os.environ.get("EDGEWISE_KEYBOARD_SCREENSHOT", tmp_path / "keyboard.png"))
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
