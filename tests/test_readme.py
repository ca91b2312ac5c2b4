"""README.md's examples run as written; its settings table is service/config.py's, its test command is the one
.ci/run runs, and every link in README.md and docs/ leads to a file (and heading) that exists.

The examples: every fenced ```sh, ```bash and ```python block of README.md, in the README's order, as one shell
session (a Python block runs as `python3 <file>` in it), in an empty folder, against the README's own serve command
(`.venv/bin/latentcast serve`, this checkout's code) running in that folder on a free port: the blocks find the
server through LATENTCAST_PORT and the admin key in `latentcast-data/admin.key`, as a reader's would. curl fails on
an HTTP error status (`--fail-with-body`), and the session stops at the first failing command.

A ```json block right after a runnable one (blank lines between them only) shows the shape of that block's last
answer: the test holds the two to the same keys and nesting (numbers may differ).

A block that cannot run here (Docker, installing packages) has `<!-- readme-test: skip (the reason) -->` on the
line before its fence. The training request is the one change the test makes to a block's text: a tiny model
(tests/training_data.py TINY_LOCAL) in place of the default budget of minutes, applied to exactly one place.
"""

import itertools
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.serving import ROOT, free_port, start_server, stop_server
from tests.training_data import TINY_LOCAL

README = ROOT / "README.md"
RUNNABLE = {"sh": "shell", "bash": "shell", "python": "python"}
DIRECTIVE = re.compile(r"^\s*<!--\s*readme-test:(.*?)-->\s*$", re.M)  # a line of its own
SKIP = re.compile(r"^\s*skip\s*\((?P<reason>[^()]*(?:\([^()]*\)[^()]*)*)\)\s*$")
SERVE = ".venv/bin/latentcast serve"

# The README trains with the default budget (minutes); the test with a tiny model (seconds).
TRAIN_BODY = '"horizon": "PT30M"}\''
SUBSTITUTIONS = {TRAIN_BODY: f'"horizon": "PT30M", "config": {json.dumps(TINY_LOCAL)}}}\''}


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    text: str
    directive: str | None  # what follows "readme-test:" in a comment on the line before the fence


def blocks(path: Path | None = None) -> list[Block]:
    """Every fenced block of a Markdown file (README.md), with the readme-test directive just above it, if any."""
    path = path or README
    found, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(`{3,})\s*([\w+-]*)", lines[i])
        if not fence:
            i += 1
            continue
        start, end = i, i + 1
        while end < len(lines) and not lines[end].startswith(fence.group(1)):
            end += 1
        assert end < len(lines), f"{path.name}:{start + 1}: a fenced block is never closed"
        before = lines[start - 1] if start else ""
        directive = DIRECTIVE.search(before)
        found.append(Block(fence.group(2), start + 1, end + 1, "\n".join(lines[start + 1:end]) + "\n",
                           directive.group(1).strip() if directive else None))
        i = end + 1
    return found


def skip_reason(block: Block) -> str | None:
    if block.directive is None:
        return None
    match = SKIP.match(block.directive)
    assert match and match.group("reason").strip(), (
        f"README.md:{block.line}: write the directive as <!-- readme-test: skip (why it cannot run) -->, "
        f"not {block.directive!r}")
    return match.group("reason").strip()


def test_every_block_has_a_language_and_every_skip_a_reason() -> None:
    every = blocks()
    assert every, "README.md has no fenced blocks"
    for block in every:
        assert block.lang, f"README.md:{block.line}: name the block's language (```sh, ```python, ```json …)"
        if skip_reason(block) is not None:
            assert block.lang in RUNNABLE, (f"README.md:{block.line}: only sh, bash and python blocks run; "
                                            "no skip needed")
    # A directive that is not on the line right before a fence would be silently ignored.
    assert len(DIRECTIVE.findall(README.read_text())) == sum(b.directive is not None for b in every), (
        "a readme-test directive in README.md is not on the line right before a fence")


def _install_and_test_commands() -> tuple[str, str]:
    """The two commands: the one-line install that ends in `latentcast serve`, and the one that runs pytest."""
    lines = [line for b in blocks() if b.lang in ("sh", "bash") for line in b.text.splitlines()]
    serve = [line for line in lines if line.endswith("&& " + SERVE)]
    tests = [line for line in lines if "-m pytest" in line]
    assert len(serve) == 1, f"README.md should hold one install-and-serve command ending in {SERVE!r}: {serve}"
    assert tests and len(set(tests)) == 1, f"README.md should hold one test command: {tests}"
    return serve[0], tests[0]


def test_ci_runs_the_readmes_test_command() -> None:
    _, command = _install_and_test_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    at = ci.index("# The README's test command, exactly:")
    assert ci[at + 1] == command


def test_the_serve_command_installs_this_checkout() -> None:
    serve, test_command = _install_and_test_commands()
    # The same environment, the same constraints; one with the dev extras for the tests.
    assert serve.replace(" -e . ", " -e '.[dev]' ").split(" && ")[:2] == test_command.split(" && ")[:2]


def _script(runnable: list[Block], folder: Path) -> str:
    """One bash session that runs the blocks in order and says which one failed."""
    parts = ["set -Eeuo pipefail",
             "curl() { command curl --fail-with-body \"$@\"; }",
             "trap 'echo \"README.md block at line $README_LINE failed (exit $?)\" >&2' ERR"]
    for block in runnable:
        text = block.text
        parts.append(f"README_LINE={block.line}; printf '\\n>>> README.md:%s\\n' {block.line}")
        if RUNNABLE[block.lang] == "python":
            path = folder / f"readme_block_{block.line}.py"
            path.write_text(text)
            parts.append(f"python3 {path}")
        else:
            parts.append(text)
    return "\n".join(parts) + "\n"


def _runnable() -> list[Block]:
    runnable = [b for b in blocks() if b.lang in RUNNABLE and skip_reason(b) is None]
    substituted = []
    for old in SUBSTITUTIONS:
        count = sum(b.text.count(old) for b in runnable)
        assert count == 1, f"the test replaces {old!r} in README.md's blocks once; found {count}: update SUBSTITUTIONS"
    for block in runnable:
        text = block.text
        for old, new in SUBSTITUTIONS.items():
            text = text.replace(old, new)
        substituted.append(Block(block.lang, block.line, block.end, text, block.directive))
    return substituted


@pytest.mark.slow
def test_readme_examples_run_against_a_live_server(tmp_path: Path) -> None:
    runnable = _runnable()
    assert any(b.lang in ("sh", "bash") for b in runnable)
    home = tmp_path / "reader"  # the reader's folder: .venv, latentcast-data, obs.json
    home.mkdir()
    (home / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    latentcast = home / ".venv" / "bin" / "latentcast"
    assert latentcast.exists(), f"{latentcast} is missing: install this checkout (pip install -e .) in {sys.prefix}"
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(SERVE.split()[1:], {"LATENTCAST_PORT": str(port)}, log, cwd=home,
                          program=[str(latentcast)])
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTCAST_")}
        env.update({"LATENTCAST_PORT": str(port), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
        script = tmp_path / "readme.sh"
        script.write_text(_script(runnable, tmp_path))
        try:
            done = subprocess.run(["bash", str(script)], cwd=home, env=env, capture_output=True, text=True,
                                  timeout=150)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"README examples did not finish in {exc.timeout} s:\n{exc.stdout}\n{exc.stderr}\n"
                        f"server log:\n{log.read_text()[-4000:]}")
        assert done.returncode == 0, (f"{done.stderr}\n--- stdout ---\n{done.stdout[-6000:]}\n"
                                      f"--- server log ---\n{log.read_text()[-4000:]}")
        _check_shown_answers(done.stdout)
    finally:
        stop_server(server)


def _settings_rows() -> list[tuple[list[str], list[str]]]:
    """(variable names, backticked defaults) of each row of the README's settings table."""
    text = README.read_text()
    section = text[text.index("\n## Settings\n"):]
    section = section[:section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `LATENTCAST_"):
            rows.append((re.findall(r"`LATENTCAST_(\w+)`", cells[0]), re.findall(r"`([^`]*)`", cells[1])))
    return rows


def test_the_settings_table_is_service_config() -> None:
    """One row per setting of service/config.py, none more, each with the default the code has."""
    from service.config import Settings

    rows = _settings_rows()
    names = [n.lower() for names, _ in rows for n in names]
    assert sorted(names) == sorted(Settings.model_fields), "README.md's settings table and service/config.py differ"
    assert len(names) == len(set(names)), "a setting is in README.md's table twice"
    for row_names, defaults in rows:
        for name, shown in zip(row_names, defaults if len(defaults) == len(row_names) else [], strict=False):
            default = Settings.model_fields[name.lower()].default
            if default is None:
                continue
            if isinstance(default, int | float):
                assert float(shown) == default, f"LATENTCAST_{name}: README says {shown}, the code {default}"
            else:
                assert shown == str(default), f"LATENTCAST_{name}: README says {shown}, the code {default}"
        defaults_needed = [n for n in row_names if Settings.model_fields[n.lower()].default is not None]
        assert not defaults_needed or len(defaults) == len(row_names), f"{row_names}: show each default in backticks"


def _shape(value: object) -> object:
    """Keys and nesting of a JSON value: numbers, strings and nulls by kind, lists by their first item."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def _same_shape(shown: object, got: object) -> bool:
    if isinstance(shown, dict) or isinstance(got, dict):
        return (isinstance(shown, dict) and isinstance(got, dict) and shown.keys() == got.keys()
                and all(_same_shape(shown[k], got[k]) for k in shown))
    if isinstance(shown, list) or isinstance(got, list):
        return isinstance(shown, list) and isinstance(got, list) and (not shown or not got
                                                                      or _same_shape(shown[0], got[0]))
    return shown == got


def _check_shown_answers(stdout: str) -> None:
    """Each ```json block after a runnable block has the shape of the last JSON answer that block printed."""
    every, lines = blocks(), README.read_text().splitlines()
    outputs = dict(re.findall(r"^>>> README\.md:(\d+)\n(.*?)(?=^>>> README\.md:|\Z)", stdout, flags=re.S | re.M))
    checked = 0
    for before, block in itertools.pairwise(every):
        if block.lang != "json" or before.lang not in RUNNABLE or any(
                line.strip() for line in lines[before.end:block.line - 1]):
            continue
        assert str(before.line) in outputs, f"README.md:{block.line} shows the answer of a block that did not run"
        answers, text, decoder = [], outputs[str(before.line)].strip(), json.JSONDecoder()
        while text:
            value, at = decoder.raw_decode(text)
            answers.append(value)
            text = text[at:].lstrip()
        assert answers, f"README.md:{before.line} printed no JSON"
        shown = _shape(json.loads(block.text))
        assert _same_shape(shown, _shape(answers[-1])), (
            f"README.md:{block.line} shows an answer unlike the one README.md:{before.line} gives:\n"
            f"shown: {shown}\ngot:   {_shape(answers[-1])}")
        checked += 1
    assert checked, "no ```json answer in README.md was checked"


# --- links ---------------------------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped, spaces to hyphens)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        heading = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower().replace("`", "")).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


# Written elsewhere, linked already: checked like any other once they exist.
PENDING = {ROOT / "docs" / "client.md", ROOT / "docs" / "dashboard.md"}


def _documents() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_lead_to_files_that_exist(doc: Path) -> None:
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)  # no links inside code blocks
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            if path not in PENDING:
                broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links: {broken}"
