"""The README and docs/ hold together: the front page stays short, every relative link lands
on a file (and a heading), and every ``w2s`` command a code block shows is one the command
line accepts and one that a test or a benchmark runs.

A command counts as run when its text appears in a file under tests/ or bench/, or when it
sits in a code block marked ``<!-- NAME -->`` that a test or benchmark reads from its page
(the file names the page and the marker), or when an identical command does.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from flows.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNERS = sorted(p for folder in ("tests", "bench") for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".yaml", ".sh"))
README_MAX_LINES = 200

# Documented commands that no test or benchmark runs yet, each with the reason. Keep it empty
# where possible: a command listed here is still checked against the argument parser.
NOT_RUN_YET: dict[str, str] = {}

FENCE = re.compile(r"(?:<!-- (?P<marker>[\w-]+) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)```", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")
SHELLS = {"bash", "sh", "shell", "console"}


@dataclass(frozen=True)
class Command:
    page: Path
    marker: str | None
    text: str  # as shown, comment and prompt stripped, whitespace collapsed

    @property
    def args(self) -> list[str]:
        return shlex.split(self.text)[1:]

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}: {self.text}"


def _code_blocks(text: str):
    for m in FENCE.finditer(text):
        yield m.group("marker"), m.group("lang"), m.group("body")


def documented_commands() -> list[Command]:
    """The ``w2s`` command lines of every code block: in a shell block, a line that starts
    with ``w2s`` (or ``.venv/bin/w2s``); in any block, a line that starts with ``$ w2s``."""
    found = []
    for page in PAGES:
        for marker, lang, body in _code_blocks(page.read_text()):
            for line in body.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line.startswith("$ "):
                    line = line[2:]
                elif lang not in SHELLS:
                    continue
                line = line.removeprefix(".venv/bin/")
                if not line.startswith("w2s "):
                    continue
                shown = line[: _comment_start(line)]
                found.append(Command(page, marker, " ".join(shown.split())))
    return found


def _comment_start(line: str) -> int:
    """Where a shell comment starts (a ``#`` after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and i > 0 and line[i - 1].isspace():
            return i
    return len(line)


def _runner_texts() -> dict[Path, str]:
    return {p: re.sub(r"[ \t]+", " ", p.read_text(errors="replace")) for p in RUNNERS}


def _appears_in(command: str, texts: dict[Path, str]) -> bool:
    """``command`` in a runner's text, not as the start of a longer command."""
    pattern = re.compile(re.escape(command) + r"(?=$|[\"'`)\]\n])", re.M)
    return any(pattern.search(t) for t in texts.values())


def _marker_is_read(page: Path, marker: str, texts: dict[Path, str]) -> bool:
    """A test or benchmark names this page and reads this marker's block."""
    forms = (f"<!-- {marker} -->", f'"{marker}"', f"'{marker}'")
    return any(page.name in t and any(f in t for f in forms) for t in texts.values())


def run_commands() -> set[str]:
    texts = _runner_texts()
    ran = set()
    for command in documented_commands():
        if _appears_in(command.text, texts) or (command.marker and _marker_is_read(command.page, command.marker, texts)):
            ran.add(command.text)
    return ran


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a "# comment" in a block is no heading
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, re.M):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        anchors.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return anchors


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is no link
    return [m.group("target") for m in LINK.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands_on_a_file_and_heading(page):
    broken = []
    for target in _links(page):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_pages_show_commands():
    """The extraction finds what the pages show (a check of the check)."""
    shown = {c.text for c in documented_commands()}
    assert "w2s run" in shown and "w2s study overlap --out bench/results" in shown
    assert not any("#" in c for c in shown if "w2s.sweep" not in c)


@pytest.mark.parametrize("command", documented_commands(), ids=str)
def test_every_documented_command_parses(command):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            _parser().parse_args(command.args)
        except SystemExit:
            pytest.fail(f"{command}: the argument parser refuses it: {err.getvalue().strip().splitlines()[-1]}")


# Paths the pages use as stand-ins for the reader's own files; the rest of such a command is checked.
STAND_IN_PATHS = ("my_texts.csv", "/data/w2s/boolq")


@pytest.mark.parametrize("command", [c for c in documented_commands() if c.args[:1] in (["run"], ["plan"])], ids=str)
def test_every_documented_run_names_a_valid_config(command, monkeypatch):
    """Parsing is not enough: the keys and values a documented run gives make a config (read
    from the repository's root, where the pages' relative paths start)."""
    from flows.cli import UserError, _config

    monkeypatch.chdir(ROOT)
    try:
        _config(_parser().parse_args(command.args).items)
    except UserError as e:
        stand_in = any(f"path: {p} does not exist" in str(e) for p in STAND_IN_PATHS)
        if not stand_in:
            pytest.fail(f"{command}: {e}")


def test_every_documented_command_is_run_by_a_test_or_benchmark():
    ran = run_commands()
    missing = [str(c) for c in documented_commands() if c.text not in ran and c.text not in NOT_RUN_YET]
    assert not missing, "documented commands no test or benchmark runs:\n" + "\n".join(missing)


def test_the_not_yet_run_list_holds_only_documented_commands():
    shown = {c.text for c in documented_commands()}
    assert set(NOT_RUN_YET) <= shown, set(NOT_RUN_YET) - shown
