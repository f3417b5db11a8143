"""The server's plugin contract: a package installed beside haneul adds routes, pages, nav entries and
tables; a broken one stops the start with its name; plugins get the server's home, not the
environment's."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from haneul.errors import InvalidInput, PluginError
from haneul.platform.testing import as_admin
from haneul.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _install(site: Path, dist: str, entry_points: dict[str, str], files: dict[str, str]) -> None:
    """Lay out a package as pip would: its files plus a dist-info folder holding its entry points."""
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[haneul.plugins]\n{lines}")


def _doc_example() -> dict[str, str]:
    """The files of the example in docs/platform.md, keyed by the path on each block's first line."""
    text = (REPO / "docs" / "platform.md").read_text(encoding="utf-8")
    section = text.split("## Write a plugin", 1)[1]
    files = {}
    for block in re.findall(r"```\w*\n(.*?)```", section, flags=re.S):
        first, _, body = block.partition("\n")
        match = re.match(r"^(?:#|\{#)\s*(hello_plugin/\S+)", first)
        if match:
            files[match.group(1)] = body
    return files


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [m for m in sys.modules if m.split(".")[0] in ("hello_plugin", "broken_plugin")]:
        del sys.modules[name]


def _client(home: Path, **settings: object) -> TestClient:
    from haneul.platform.server import create_app

    return TestClient(create_app(Settings(home=home, capacity_cpus=1, **settings), server_url="http://testserver"))


def test_doc_example_mounts_page_nav_static_and_tables(site: Path, tmp_path: Path) -> None:
    files = _doc_example()
    assert set(files) == {"hello_plugin/__init__.py", "hello_plugin/templates/hello.html",
                          "hello_plugin/migrations/hello_0001.py"}
    assert len(files["hello_plugin/__init__.py"].splitlines()) <= 32
    files["hello_plugin/static/hello.js"] = "window.hello = 1;\n"
    _install(site, "hello-plugin", {"hello": "hello_plugin:plugin"}, files)

    home = tmp_path / "server-home"
    with _client(home) as client:
        as_admin(client)
        page = client.get("/hello")
        assert page.status_code == 200
        assert f"Hello from {home}" in page.text
        assert '<a href="/hello">Hello</a>' in page.text  # the layout and nav of every page
        sessions = client.get("/").text
        nav = re.search(r"<nav>(.*?)</nav>", sessions, flags=re.S).group(1)  # type: ignore[union-attr]
        labels = re.findall(r">([^<]+)</a>", nav)
        assert labels.index("Compare") < labels.index("Evals") < labels.index("Hello") < labels.index("API")
        assert client.get("/static/hello/hello.js").text == "window.hello = 1;\n"
        client.get("/hello")
        assert client.get("/api/v1/hello").json() == {"visits": 2, "home": str(home)}
        assert "hello" in client.app.state.plugins  # type: ignore[attr-defined]

    engine_tables = inspect(_engine(home)).get_table_names()
    assert {"hello_visits", "alembic_version_hello", "alembic_version", "sessions"} <= set(engine_tables)

    # a second start finds its revision applied (no error, visits kept); disabled, the platform still starts
    with _client(home) as client:
        as_admin(client)
        assert client.get("/api/v1/hello").json()["visits"] == 2
    with _client(home, disable_plugins="hello") as client:
        as_admin(client)
        assert client.get("/hello").status_code == 404
        assert ">Hello<" not in client.get("/").text


def _engine(home: Path):  # type: ignore[no-untyped-def]
    """The database a server on ``home`` uses: its SQLite file, or the PostgreSQL one the run names."""
    from haneul.platform.db import make_engine
    from haneul.settings import Settings

    return make_engine(Settings(home=home).database_url)


def test_broken_plugin_stops_start_with_its_name(site: Path, tmp_path: Path) -> None:
    _install(site, "broken-plugin", {"broken": "broken_plugin:plugin"},
             {"broken_plugin/__init__.py": "import not_a_module_anywhere\n"})
    with pytest.raises(PluginError, match=r"plugin 'broken' \(broken_plugin:plugin\) failed to load: "
                                          r"ModuleNotFoundError.*HANEUL_DISABLE_PLUGINS=broken"):
        _client(tmp_path / "h")
    with _client(tmp_path / "h", disable_plugins="broken") as client:
        as_admin(client)
        assert client.get("/api/v1/health").status_code == 200
    with pytest.raises(InvalidInput, match="'brokn', which is not an installed plugin; installed plugins: .*broken"):
        _client(tmp_path / "h", disable_plugins="brokn")


@pytest.mark.parametrize("body, error", [
    ("def plugin(ctx):\n    raise RuntimeError('no licence key')\n", "RuntimeError: no licence key"),
    ("def plugin(ctx):\n    return {'router': None}\n", "returned dict, not a haneul.platform.plugins.Plugin"),
    ("from pathlib import Path\nfrom haneul.platform.plugins import Plugin\n"
     "def plugin(ctx):\n    return Plugin(templates=Path('/nowhere/templates'))\n",
     "names a templates folder that does not exist: /nowhere/templates"),
])
def test_plugin_factory_failures_name_the_plugin(site: Path, tmp_path: Path, body: str, error: str) -> None:
    _install(site, "broken-plugin", {"broken": "broken_plugin:plugin"}, {"broken_plugin/__init__.py": body})
    with pytest.raises(PluginError, match=re.escape(error)) as info:
        _client(tmp_path / "h")
    assert str(info.value).startswith("plugin 'broken' (broken_plugin:plugin)")


def test_server_command_refuses_in_one_line(site: Path, tmp_path: Path) -> None:
    _install(site, "broken-plugin", {"broken": "broken_plugin:plugin"},
             {"broken_plugin/__init__.py": "raise ImportError('needs libfoo 2')\n"})
    env = {"HANEUL_HOME": str(tmp_path / "h"), "PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "haneul.cli.main", "server", "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "plugin 'broken'" in lines[0] and "needs libfoo 2" in lines[0], proc.stderr


def test_lm_plugin_serves_models_of_the_servers_home(tmp_path: Path) -> None:
    """The environment's HANEUL_HOME (the autouse fixture's) holds one model, the server's home another."""
    from haneul.lm.registry import models_dir, register_model
    from haneul.settings import get_settings

    def fake_model(folder: Path) -> Path:
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "tokenizer.json").write_text("{}")
        return folder

    fake_model(models_dir(get_settings().home) / "env-model")
    home = tmp_path / "server-home"
    fake_model(models_dir(home) / "home-model")
    register_model("registered-model", fake_model(tmp_path / "elsewhere"), root=models_dir(home))
    with _client(home) as client:
        as_admin(client)
        names = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert {"home-model", "registered-model"} <= names
    assert "env-model" not in names


def test_every_setting_is_documented() -> None:
    doc = (REPO / "docs" / "platform.md").read_text(encoding="utf-8")
    missing = [f"HANEUL_{name.upper()}" for name in Settings.model_fields if f"`HANEUL_{name.upper()}`" not in doc]
    assert not missing, f"document these settings in docs/platform.md: {missing}"


def test_builtin_packages_come_in_as_plugins(tmp_path: Path) -> None:
    with _client(tmp_path / "h") as client:
        as_admin(client)
        assert client.app.state.plugins == ["carecall", "dialog", "evals", "lm", "rec", "studio", "tune"]  # type: ignore[attr-defined]
        paths = set(client.get("/api/v1/openapi.json").json()["paths"])
        assert {"/v1/models", "/api/v1/evals/results", "/api/v1/dialog/memory",
                "/api/v1/rec/{model_name}/recommend/{user}", "/api/v1/tune/studies", "/api/v1/studio/presets",
                "/api/v1/carecall/campaigns"} <= paths
        assert client.get("/evals").status_code == 200
        assert '<a href="/evals">Evals</a>' in client.get("/").text
        assert '<a href="/tune">Tune</a>' in client.get("/").text
