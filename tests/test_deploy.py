"""Deployment: the lock, the install script's skip logic, Streamlit's configuration, the container files,
the readiness probe against a real server, and results shared across sessions. No Docker needed."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from browser_support import app_server, free_port
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from streamlit.testing.v1 import AppTest

from audit_metrics.ui import readiness, state

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def _lock_packages() -> dict[str, set[str]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    out: dict[str, set[str]] = {}
    for pkg in lock["package"]:
        if pkg["name"] != "audit-metrics":
            out.setdefault(canonicalize_name(pkg["name"]), set()).add(pkg["version"])
    return out


# ------------------------------------------------------------------ the lock


def test_lock_records_exactly_pyprojects_requirements() -> None:
    """uv.lock is not stale: its record of the project's requirements equals pyproject.toml's (the check
    `uv lock --check` makes), and every requirement resolved to a locked version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(f"{r}; extra == '{extra}'") if ";" not in r else Requirement(r)
               for extra, reqs in project["optional-dependencies"].items() for r in reqs]
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    me = next(p for p in lock["package"] if p["name"] == "audit-metrics")
    recorded = {(canonicalize_name(r["name"]), r.get("specifier", ""), tuple(sorted(r.get("extras", []))))
                for r in me["metadata"]["requires-dist"]}
    assert recorded == {(canonicalize_name(r.name), str(r.specifier), tuple(sorted(r.extras))) for r in wanted}
    locked = _lock_packages()
    missing = {canonicalize_name(r.name) for r in wanted} - set(locked)
    assert not missing, f"not in uv.lock: {missing} (run bash scripts/dev.sh lock)"
    assert lock["requires-python"] == project["requires-python"]


def test_pip_export_pins_the_same_versions_as_uv_lock() -> None:
    """The pip fallback installs scripts/requirements.lock.txt: the same name==version pairs as uv.lock
    (its oracle), every one with a sha256."""
    text = (ROOT / "scripts" / "requirements.lock.txt").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, flags=re.M)
    exported: dict[str, set[str]] = {}
    for name, version in pins:
        exported.setdefault(canonicalize_name(name), set()).add(version)
    assert exported == _lock_packages()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in b for b in blocks if "==" in b)


# ------------------------------------------------------------------ scripts/dev.sh


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A copy of the install inputs with a stand-in .venv: python is the real one (so the Python check is
    real); streamlit, uv, pip and the dashboard's launcher only record their arguments. Nothing is downloaded."""
    for rel in ("scripts/dev.sh", "scripts/requirements.lock.txt", "pyproject.toml", "uv.lock"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    log = tmp_path / "calls.log"
    _script(venv / "python", f'if [ "${{1:-}}" = -m ] && [ "${{2:-}}" = pip ]; then echo "pip $*" >>{log}; '
                             f'exit 0; fi\nif [ "${{1:-}}" = -m ] && [ "${{2:-}}" = audit_metrics.ui.serve ]; then '
                             f'echo "python $*" >>{log}; exit 0; fi\nexec {sys.executable} "$@"\n')
    _script(venv / "streamlit", f'echo "streamlit $*" >>{log}\n')
    tools = tmp_path / "tools"
    tools.mkdir()
    _script(tools / "uv", f'[ "$1" = --version ] && {{ echo "uv 0.0.0-test"; exit 0; }}\necho "uv $*" >>{log}\n')
    return tmp_path


def _dev(sandbox: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PATH": f"{sandbox / 'tools'}:{os.environ['PATH']}", **env}
    return subprocess.run(["bash", str(sandbox / "scripts" / "dev.sh"), *args], env=full, cwd=sandbox,
                          capture_output=True, text=True, timeout=120)


def _calls(sandbox: Path) -> list[str]:
    log = sandbox / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_dev_sh_installs_once_then_skips_until_the_lock_changes(sandbox: Path) -> None:
    first = _dev(sandbox, "app", "--server.port", "9999")
    assert first.returncode == 0, first.stderr
    assert "installing the locked environment" in first.stderr  # progress is shown on a cold install
    calls = _calls(sandbox)
    assert calls[0].startswith("uv sync --frozen --extra test")
    assert calls[1] == "python -m audit_metrics.ui.serve --server.port 9999"  # streamlit run app.py, code imported first

    started = time.perf_counter()
    second = _dev(sandbox, "app")
    print(f"warm start of dev.sh app before streamlit: {time.perf_counter() - started:.2f} s")
    assert second.returncode == 0, second.stderr
    assert _calls(sandbox)[2:] == ["python -m audit_metrics.ui.serve"]  # no install
    assert "installing" not in second.stderr

    with (sandbox / "uv.lock").open("a") as fh:
        fh.write("\n")
    third = _dev(sandbox, "app")
    assert third.returncode == 0, third.stderr
    assert _calls(sandbox)[3].startswith("uv sync --frozen")  # the lock changed: installed again


def test_dev_sh_falls_back_to_pip_with_the_hashed_lock(sandbox: Path) -> None:
    result = _dev(sandbox, "app", AUDIT_METRICS_NO_UV="1")
    assert result.returncode == 0, result.stderr
    assert "uv unavailable" in result.stderr
    calls = _calls(sandbox)
    assert "--require-hashes --no-deps -r scripts/requirements.lock.txt" in calls[0]
    assert calls[1].startswith("pip -m pip install -q --no-deps -e .")
    assert _dev(sandbox, "app", AUDIT_METRICS_NO_UV="1").returncode == 0
    assert len([c for c in _calls(sandbox) if c.startswith("pip")]) == 2  # the second start skipped it


def test_dev_sh_refuses_an_old_python_with_a_clear_message(sandbox: Path) -> None:
    shutil.rmtree(sandbox / ".venv")
    fake = sandbox / "old"
    fake.mkdir()
    for name in ("python3", "python"):  # a Python 3.9 that says so
        _script(fake / name, 'case "$*" in *sys.exit*) exit 1;; *python_version*) echo 3.9.2;; esac\n')
    tools = sandbox / "tools"
    for tool in ("bash", "cat", "cut", "date", "dirname", "head", "id", "sha256sum"):
        (tools / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    env = {**os.environ, "PATH": f"{fake}:{tools}"}
    env.pop("PYTHON", None)
    result = subprocess.run([shutil.which("bash"), str(sandbox / "scripts" / "dev.sh"), "test"],  # type: ignore[list-item]
                            env=env, cwd=sandbox, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert "needs Python 3.11 or newer; found: python3=3.9.2" in result.stderr
    assert "PYTHON=/path/to/python3.11" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ Streamlit configuration


def test_streamlit_reads_the_committed_config() -> None:
    """Oracle: Streamlit's own config parser, run from the project folder as `streamlit run` is."""
    code = ("from streamlit import config; config.get_config_options(force_reparse=True);"
            "print(config.get_option('browser.gatherUsageStats'), config.get_option('client.toolbarMode'),"
            " config.get_option('server.maxUploadSize'), config.get_option('client.showErrorDetails'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "viewer", str(state.MAX_UPLOAD_MB), "type"]


# ------------------------------------------------------------------ container files (checked as text)


def test_dockerfile_is_slim_locked_non_root_with_a_rendering_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", text, flags=re.M)
    assert "uv.lock" in text and "--frozen" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in {"root", "0"}
    health = re.search(r"^HEALTHCHECK.*(?:\n\s+.*)*", text, flags=re.M)
    assert health and "audit_metrics.ui.readiness" in health.group(0)
    assert "_stcore/health" not in health.group(0)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".git", ".streamlit/secrets.toml"} <= set(ignored)


def test_compose_mounts_catalogue_and_data_read_only() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    service = next(iter(compose["services"].values()))
    mounts = [v for v in service["volumes"] if isinstance(v, str)]
    targets = {m.rsplit(":", 2)[1]: m for m in mounts}  # SOURCE:TARGET:ro (SOURCE may hold ${VAR:-x})
    assert {"/srv/catalogue", "/srv/data"} <= set(targets)
    assert all(m.endswith(":ro") for m in mounts)
    assert service["environment"]["AUDIT_METRICS_CATALOGUE"].startswith("/srv/catalogue/")
    assert service.get("read_only") is True


# ------------------------------------------------------------------ the readiness probe, on a real server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The dashboard served as the image and dev.sh serve it (`python -m audit_metrics.ui.serve`: `streamlit run
    app.py` with the code imported first) on a free port, on a catalogue copy the test may change."""
    folder = tmp_path_factory.mktemp("live")
    (folder / "sample_data").symlink_to(ROOT / "sample_data")
    shutil.copy(ROOT / "indicators.yaml", folder / "indicators.yaml")
    with app_server(folder, {"AUDIT_METRICS_CATALOGUE": str(folder / "indicators.yaml")}, launcher=True) as url:
        yield url, folder / "indicators.yaml"


def _probe(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit_metrics.ui.readiness", "--url", url, "--timeout", "150"],
                          capture_output=True, text=True, timeout=240)


def test_probe_is_ready_only_when_the_view_renders_and_follows_catalogue_changes(
        live: tuple[str, Path]) -> None:
    url, catalogue = live
    good = _probe(url)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ready: Overview rendered in")
    assert "How do trusts compare across cancer audits?" in good.stdout

    original = catalogue.read_text(encoding="utf-8")
    try:  # a broken catalogue saved while the server runs: health still says ok, the probe does not
        catalogue.write_text(original.replace("version: 1", "version: 7", 1), encoding="utf-8")
        assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"
        bad = _probe(url)
        assert bad.returncode == 1
        assert "the app showed an error: The indicator catalogue indicators.yaml has 1 problem(s)" in bad.stderr
    finally:
        catalogue.write_text(original, encoding="utf-8")
    assert _probe(url).returncode == 0  # and back, without a restart


def test_open_session_sees_a_saved_catalogue_at_its_next_click(live: tuple[str, Path]) -> None:
    """A session open before the catalogue is saved shows the new definition on its next rerun, whole:
    the new title with the new indicator count, never one without the other."""
    url, catalogue = live
    original = catalogue.read_text(encoding="utf-8")
    old_title = "90-day mortality after major bowel cancer resection"
    assert f"title: {old_title}" in original or f'title: "{old_title}"' in original
    with readiness.Session(url, timeout=180) as tab:
        before = tab.run({"view": "Indicator catalogue"})
        count = before.find("markdown", " indicators defined in `indicators.yaml`")
        assert count is not None
        assert any(old_title in e.text for e in before.elements)
        try:
            catalogue.write_text(original.replace(old_title, "Death within 90 days of bowel surgery", 1),
                                 encoding="utf-8")
            after = tab.run({"view": "Indicator catalogue"})
        finally:
            catalogue.write_text(original, encoding="utf-8")
    assert after.finished and not after.errors
    texts = " ".join(e.text for e in after.elements)
    assert "Death within 90 days of bowel surgery" in texts and old_title not in texts
    assert after.has("markdown", count.text.split(" (")[0])  # the same definitions, one renamed


def test_probe_reports_an_unreachable_server() -> None:
    ok, message = readiness.check_ready(f"http://127.0.0.1:{free_port()}", timeout=5)
    assert not ok
    assert message.startswith("cannot open a session at http://127.0.0.1:")


# ------------------------------------------------------------------ results shared across sessions


def test_sessions_share_one_computation(monkeypatch: pytest.MonkeyPatch, project_copy: Path) -> None:
    """Three sessions (AppTest runs them in this process, as the server runs browser tabs) on a catalogue no
    other test uses: the pipeline runs once, for the first; the others reuse its results."""
    calls: list[str] = []
    real = state.run_audit

    def counting(loaded, data=None):  # type: ignore[no-untyped-def]
        calls.append(str(loaded.path))
        return real(loaded, data=data)

    monkeypatch.setattr(state, "run_audit", counting)
    monkeypatch.setenv("AUDIT_METRICS_CATALOGUE", str(project_copy / "indicators.yaml"))
    for view in ("Overview", "Cancer Alliance", "Overview"):
        at = AppTest.from_file(APP, default_timeout=180)
        at.query_params["view"] = view
        at.run()
        assert not at.exception
        assert not at.error
    assert calls == [str(project_copy / "indicators.yaml")]


def test_the_launcher_imports_every_dashboard_module_first() -> None:
    """audit_metrics/ui/serve.py: what the first visitor after a restart no longer waits for."""
    import pkgutil

    from audit_metrics import ui
    from audit_metrics.ui import serve

    names = serve.warm_imports()
    every = {m.name for m in pkgutil.iter_modules(ui.__path__, prefix="audit_metrics.ui.")}
    assert set(names) == every - {"audit_metrics.ui.serve"} and {"audit_metrics.ui.overview",
                                                                  "audit_metrics.ui.state"} <= set(names)
    assert all(n in sys.modules for n in names)


def test_the_launcher_warms_the_server_up_by_rendering_the_overview(live: tuple[str, Path]) -> None:
    """Once the server answers, the launcher renders the Overview in a session of its own (the readiness probe),
    so the first visitor finds the results and the rug in memory; it says so in its log."""
    log = live[1].parent / "streamlit.log"
    deadline = time.monotonic() + 240
    while "audit_metrics: warm-up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    text = log.read_text()
    assert "audit_metrics: dashboard code imported in" in text
    assert "audit_metrics: warm-up done after" in text and "ready: Overview rendered" in text, text[-2000:]


def test_the_launcher_finds_its_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit import config

    from audit_metrics.ui import serve

    for address, host in (("", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")):
        monkeypatch.setattr(config, "get_option", {"server.address": address, "server.port": 8612,
                                                   "server.baseUrlPath": "/audit/"}.get)
        assert serve.local_url() == f"http://{host}:8612/audit"
    monkeypatch.setattr(config, "get_option", {"server.address": None, "server.port": 8501,
                                               "server.baseUrlPath": ""}.get)
    assert serve.local_url() == "http://127.0.0.1:8501"


def test_the_launcher_refuses_to_start_outside_the_project(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "audit_metrics.ui.serve"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode != 0 and "no app.py in" in result.stderr and "Traceback" not in result.stderr
