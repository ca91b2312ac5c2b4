"""The `latentcast` command's keys and first-start parts, in-process against both backends."""

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from service import cli
from service.config import Settings, get_settings
from service.storage import keys
from service.storage.tables import api_keys
from tests.serving import ROOT, free_port


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LATENTCAST_DATABASE_URL", db_url)
    monkeypatch.setenv("LATENTCAST_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def test_keys_create_prints_the_key_alone(env: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "create", "ci", "--scopes", "read,write"]) == 0
    out = capsys.readouterr().out
    key = out.removesuffix("\n")
    assert out.count("\n") == 1 and key.startswith("lc_") and " " not in key
    assert keys.scopes_for(engine, key) == frozenset({"read", "write"})


def test_keys_list_and_revoke(env: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["keys", "create", "b-reader"])
    key = capsys.readouterr().out.strip()
    cli.main(["keys", "create", "a-admin", "--scopes", "admin"])
    capsys.readouterr()
    assert cli.main(["keys", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["a-admin\tadmin\tactive", "b-reader\tread\tactive"]
    assert cli.main(["keys", "revoke", "b-reader"]) == 0
    assert keys.scopes_for(engine, key) is None
    cli.main(["keys", "list"])
    assert "b-reader\tread\trevoked" in capsys.readouterr().out
    with engine.connect() as conn:  # only a hash is stored
        stored = [str(v) for row in conn.execute(select(api_keys)) for v in row]
    assert keys.hash_key(key) in stored and not any(key in v for v in stored)


@pytest.mark.parametrize(("argv", "message"), [
    (["keys", "revoke", "ghost"], "no active key named 'ghost'"),
    (["keys", "create", "x", "--scopes", "root"], "scopes must be"),
])
def test_keys_errors_exit_2(env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_duplicate_key_name_exits_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["keys", "create", "dup"])
    capsys.readouterr()
    assert cli.main(["keys", "create", "dup"]) == 2
    assert "exists already" in capsys.readouterr().err


def test_first_start_writes_the_admin_key_to_its_file_only(settings: Settings, engine: Engine,
                                                            capsys: pytest.CaptureFixture[str],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        cli._ensure_admin_key(settings)
    path = settings.data_dir / "admin.key"
    key = path.read_text().strip()
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.scopes_for(engine, key) == frozenset({"read", "write", "admin"})
    captured = capsys.readouterr()
    assert key not in captured.out + captured.err + caplog.text  # logs are kept and shipped: no secret in them
    assert any(str(path) in r.getMessage() for r in caplog.records)  # the log says where it is
    cli._ensure_admin_key(settings)  # second start: keys exist, nothing printed, file untouched
    assert capsys.readouterr().out == "" and path.read_text().strip() == key
    assert [k.name for k in keys.list_keys(engine)] == ["admin"]


def test_auth_disabled_warns_and_creates_no_key(settings: Settings, engine: Engine,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cli._ensure_admin_key(settings.model_copy(update={"auth": "disabled"}))
    assert any("LATENTCAST_AUTH=disabled" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert keys.list_keys(engine) == []


def test_keys_work_before_the_first_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LATENTCAST_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("LATENTCAST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert cli.main(["keys", "create", "early", "--scopes", "write"]) == 0
        assert capsys.readouterr().out.startswith("lc_")
        assert cli.main(["keys", "list"]) == 0
        assert capsys.readouterr().out == "early\twrite\tactive\n"
    finally:
        get_settings.cache_clear()


# As root the command drops to `nobody` once its modules are imported (root writes into any folder whatever its
# mode, and the interpreter may live where `nobody` cannot read it).
_AS_NOBODY = ("import os, sys; import service.cli as cli; os.setgroups([]); os.setgid(65534); os.setuid(65534); "
              "sys.exit(cli.main(sys.argv[1:]))")


def _latentcast(args: list[str], data_dir: Path, *, as_nobody: bool = False) -> subprocess.CompletedProcess:
    """`python -m service.cli <args>` in a fresh process, its data folder `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTCAST_")}
    env.update({"LATENTCAST_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "LATENTCAST_PORT": str(free_port())})
    entry = ["-c", _AS_NOBODY] if as_nobody and os.geteuid() == 0 else ["-m", "service.cli"]
    return subprocess.run([sys.executable, *entry, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def _refused_in_one_line(done: subprocess.CompletedProcess, data_dir: Path) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("latentcast: cannot use the data folder") and str(data_dir) in line
    assert "LATENTCAST_DATA_DIR" in line
    return line


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_file_where_the_data_folder_should_be_is_one_line_and_exit_1(tmp_path: Path, command: str) -> None:
    in_the_way = tmp_path / "latentcast-data"
    in_the_way.write_text("not a folder")
    assert "not a folder" in _refused_in_one_line(_latentcast([command], in_the_way), in_the_way)
    below = in_the_way / "data"  # a file where a parent folder should be
    _refused_in_one_line(_latentcast([command], below), below)


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A folder of this test under /tmp that any user may enter (pytest's tmp_path is its owner's alone)."""
    path = Path(tempfile.mkdtemp(prefix="lc-cli-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_read_only_data_folder_is_one_line_and_exit_1(reachable_tmp: Path, command: str) -> None:
    read_only = reachable_tmp / "data"
    read_only.mkdir(mode=0o555)
    read_only.chmod(0o555)
    line = _refused_in_one_line(_latentcast([command], read_only, as_nobody=True), read_only)
    assert "Permission denied" in line


def test_the_data_folder_is_made_0700(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    done = _latentcast(["migrate"], data)
    assert done.returncode == 0, done.stderr
    assert data.stat().st_mode & 0o777 == 0o700


def test_keys_create_with_a_prefix(env: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "create", "acme", "--scopes", "read,write", "--prefix", "acme-"]) == 0
    key = capsys.readouterr().out.strip()
    principal = keys.authenticate(engine, key)
    assert principal.prefix == "acme-" and principal.sees_series("acme-1") and not principal.sees_series("beta-1")
    assert cli.main(["keys", "list"]) == 0
    assert capsys.readouterr().out == "acme\tread,write\tactive\tprefix=acme-\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["keys", "create", "x", "--scopes", "admin", "--prefix", "acme-"], "cannot hold the admin scope"),
    (["keys", "create", "x", "--prefix=-acme"], "the prefix must be the beginning of a series key"),
    (["keys", "create", "x", "--prefix", "a c"], "the prefix must be the beginning of a series key"),
    (["keys", "create", "x", "--prefix", ""], "the prefix must be the beginning of a series key"),
])
def test_keys_prefix_errors_exit_2(env: Path, engine: Engine, capsys: pytest.CaptureFixture[str], argv: list[str],
                                   message: str) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err
    assert keys.list_keys(engine) == []
