"""Headless Chromium for looking at pages the way a person does: scripts run, images load.

Two ways in. ``dump_dom`` and ``screenshot`` run Chromium once on its command line, with
``--virtual-time-budget`` letting the page's timers and fetches finish first. ``page()``
opens a tab driven over the DevTools protocol, for what the command line cannot do: wait
until something has rendered, set the browser's local storage before a page's scripts
read it (a returning user's settings), click, read what images really loaded, and take a
whole-page picture.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # we run as root in a container; Chromium's sandbox refuses to start there
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_binary() -> str | None:
    """Debian's ``/usr/bin/chromium``, else a ``chromium`` on PATH, else None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _binary() -> str:
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install chromium)")
    return binary


def _chromium(args: list[str], budget_ms: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="w2s-chromium-") as profile:
        cmd = [_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=budget_ms / 1000 + 60)


def screenshot(url: str, path: Path, size: tuple[int, int] = (1600, 1000), budget_ms: int = 15000) -> Path:
    """Render ``url`` in a ``size`` (width, height) window and save it as a PNG at ``path``."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a picture left from an earlier run must not pass for this one
    done = _chromium([f"--window-size={size[0]},{size[1]}", f"--screenshot={path}", url], budget_ms)
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return path


def dump_dom(url: str, budget_ms: int = 15000) -> str:
    """The DOM of ``url`` as serialized once its scripts have had ``budget_ms`` of virtual time."""
    done = _chromium(["--dump-dom", url], budget_ms)
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"chromium dumped no DOM (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


class Page:
    """One Chromium tab over the DevTools protocol (a websocket of JSON messages)."""

    def __init__(self, socket):
        self._socket, self._next = socket, 0

    def call(self, method: str, **params) -> dict:
        self._next += 1
        self._socket.send(json.dumps({"id": self._next, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self._socket.recv())
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}…: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        # While a page loads its body may not exist yet: an expression that throws is not yet true.
        while not self.evaluate(f"(() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not show {what or expression} within {timeout:.0f} s")
            time.sleep(0.25)

    def open(self, url: str, until: str = "document.readyState === 'complete'", timeout: float = 60.0,
             what: str = "") -> None:
        """Load ``url`` and wait until the JavaScript expression ``until`` holds, then for
        the page to settle (fonts, images, a last re-render)."""
        self.call("Page.navigate", url=url)
        self.wait_for(until, timeout, what)
        self.evaluate("document.fonts.ready.then(() => true)")
        time.sleep(1.0)

    def dom(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """The viewport (or the whole page's height) as a PNG at ``path``."""
        params = {"format": "png"}
        if full_page:
            width, height = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path


@contextmanager
def page(size: tuple[int, int] = (1600, 1000), local_storage: dict[str, str] | None = None,
         timeout: float = 60.0) -> Iterator[Page]:
    """A tab of a fresh headless Chromium with a ``size`` viewport; ``local_storage`` entries
    are set in every page before its own scripts run. Chromium is stopped on exit."""
    from websockets.sync.client import connect

    with tempfile.TemporaryDirectory(prefix="w2s-chromium-") as profile:
        cmd = [_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
               f"--window-size={size[0]},{size[1]}", "about:blank"]
        chromium = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        try:
            port = _devtools_port(Path(profile), chromium, timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                target = next(t for t in json.load(response) if t["type"] == "page")
            with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout) as socket:
                tab = Page(socket)
                tab.call("Page.enable")
                tab.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1,
                         mobile=False)
                if local_storage:
                    setting = ";".join(f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)})"
                                       for k, v in local_storage.items())
                    tab.call("Page.addScriptToEvaluateOnNewDocument", source=f"try {{ {setting} }} catch (e) {{}}")
                yield tab
        finally:
            _stop_group(chromium)


def _devtools_port(profile: Path, chromium: subprocess.Popen, timeout: float) -> int:
    """Chromium writes the port it chose to DevToolsActivePort in its profile."""
    active, deadline = profile / "DevToolsActivePort", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chromium.poll() is not None:
            raise RuntimeError(f"chromium exited with status {chromium.returncode} before it listened")
        lines = active.read_text().splitlines() if active.is_file() else []
        if lines and lines[0].isdigit():
            return int(lines[0])
        time.sleep(0.1)
    raise RuntimeError(f"chromium did not open its DevTools port within {timeout:.0f} s")


def _stop_group(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM to the process group, then SIGKILL to what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; helpers of its group may linger a moment
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                os.killpg(process.pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            break
    process.poll()


def image_check_js() -> str:
    """For every ``img`` of the page: its source's scheme (and start), its natural size, and
    how many distinct colours a sample of its pixels has (1 for a blank image, 0 for one
    that did not load)."""
    return """
    Promise.all([...document.images].map(async (img) => {
      await img.decode().catch(() => null);
      const w = img.naturalWidth, h = img.naturalHeight;
      let colours = 0;
      if (w && h) {
        const canvas = document.createElement('canvas');
        canvas.width = w; canvas.height = h;
        const ctx = canvas.getContext('2d');
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, w, h).data, seen = new Set();
        const step = Math.max(1, Math.floor(w * h / 20000)) * 4;
        for (let i = 0; i < data.length; i += step) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        colours = seen.size;
      }
      return {scheme: img.src.split(':')[0], src: img.src.slice(0, 160), alt: img.alt, width: w, height: h, colours: colours};
    }))
    """
