"""The test "cloud": fake_cloud.py running as a real second process on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent


class CloudProcess:
    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.http = httpx.Client(timeout=5, verify=False)

    def start(self, port: int = 0) -> "CloudProcess":
        self.proc = subprocess.Popen([sys.executable, str(HERE / "fake_cloud.py"), "--port", str(port)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake cloud did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def control(self, mode: str, times: int | None = None, delay: float = 30.0) -> None:
        self.http.post(f"http://127.0.0.1:{self.port}/_control",
                       json={"mode": mode, "times": times, "delay": delay}).raise_for_status()

    def requests(self) -> list[dict]:
        return self.http.get(f"http://127.0.0.1:{self.port}/_requests").json()

    def clear(self) -> None:
        self.http.post(f"http://127.0.0.1:{self.port}/_clear").raise_for_status()


@pytest.fixture(scope="module")
def cloud_proc():
    c = CloudProcess().start()
    yield c
    c.kill()
    c.http.close()


@pytest.fixture
def cloud(cloud_proc):
    """The shared fake cloud, reset to 'ok' with an empty request record."""
    if cloud_proc.proc.poll() is not None:  # a test killed it: bring it back on the same port
        cloud_proc.start(cloud_proc.port)
    cloud_proc.clear()
    return cloud_proc
