"""How pool installs: every package ships, and the supervisor lives under pool's name.

The supervisor's source is the top-level ``supervisor/`` folder, installed as ``pool.supervisor``: PyPI's
``supervisor`` (supervisord) owns the import name ``supervisor``, and two distributions that install the same
top-level package write into one directory, so uninstalling either breaks the other. The install test builds
pool's wheel and installs it next to PyPI's supervisor in one target directory (needs PyPI, as ``make test``'s
own install does).
"""

from __future__ import annotations

import email.message
import email.parser
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_for_installation() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    roots = {"pool": REPO / "pool", "pool.supervisor": REPO / "supervisor"}
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            found.add(".".join((name, *relative)))
    assert set(setuptools["packages"]) == found
    assert setuptools["package-dir"] == {"pool.supervisor": "supervisor"}


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def _build_wheel(tmp_path: Path) -> Path:
    """pool's wheel, built from a copy of what the distribution is made of."""
    source = tmp_path / "source"
    source.mkdir()
    for part in ("pool", "supervisor"):
        shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source)
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source)
    (wheel,) = wheels.glob("pool_queue-*.whl")
    return wheel


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.BytesParser().parsebytes(archive.read(name))


def test_the_wheel_says_its_license_readme_pythons_and_optional_dependencies(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    with zipfile.ZipFile(wheel) as archive:
        assert any(n.endswith("licenses/LICENSE") for n in archive.namelist())
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().startswith("# pool\n")  # the README is the long description
    classifiers = metadata.get_all("Classifier")
    minimum = int(_pyproject()["project"]["requires-python"].removeprefix(">=3."))
    for minor in range(minimum, 14):  # every supported Python is named
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    requires = metadata.get_all("Requires-Dist")
    (uvloop,) = [r for r in requires if r.startswith("uvloop")]
    # uvloop only where it installs (CPython on POSIX): elsewhere pool runs on asyncio's loop
    assert 'sys_platform != "win32"' in uvloop and 'platform_python_implementation == "CPython"' in uvloop
    # watchfiles only for `pool worker --watch` (arq's [watch] extra; the dev extra has it for the tests)
    watchfiles = [r for r in requires if r.startswith("watchfiles")]
    assert watchfiles and all("extra ==" in r for r in watchfiles)
    assert any(r.endswith('extra == "watch"') for r in watchfiles)
    assert "watch" in metadata.get_all("Provides-Extra")


def test_pool_installed_beside_pypi_supervisor_leaves_both_importable_and_working(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    target = tmp_path / "site"
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, "supervisor", wheel)

    # one directory each: pool's supervisor is inside pool/, supervisord's package holds none of pool's files
    assert (target / "pool" / "supervisor" / "arbiter.py").is_file()
    assert (target / "supervisor" / "supervisord.py").is_file()
    assert not (target / "supervisor" / "arbiter.py").exists()

    # the installed copies are the ones imported (not this checkout): run from elsewhere, the target first
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    where = _run(
        sys.executable,
        "-c",
        "import supervisor.supervisord, supervisor.options, pool.supervisor.arbiter, pool.storage.scripts;"
        "print(supervisor.supervisord.__file__); print(pool.supervisor.arbiter.__file__)",
        cwd=tmp_path,
        env=env,
    ).split()
    assert [Path(p).is_relative_to(target) for p in where] == [True, True]
    usage = _run(sys.executable, "-m", "pool", "start", "--help", cwd=tmp_path, env=env)
    assert "--procs" in usage
