"""A minimal PEP 517 / PEP 660 build backend for the `leepstream` package, standard library only.

It builds a pure-Python wheel of src/<package>, an editable wheel (a .pth file pointing at src/)
and an sdist, from the [project] table of pyproject.toml (name, version, description, readme,
requires-python, dependencies, optional-dependencies). Archives are reproducible: fixed
timestamps and sorted entries. Not a general-purpose backend: just enough for this package.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import pathlib
import re
import sys
import tarfile
import zipfile
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: get_requires_for_build_* ask for tomli
    tomllib = None

ROOT = pathlib.Path(__file__).resolve().parents[1]
EPOCH = (1980, 1, 1, 0, 0, 0)
TAG = "py3-none-any"


def _pyproject() -> dict[str, Any]:
    loader = tomllib
    if loader is None:
        import tomli as loader  # type: ignore[no-redef]
    with open(ROOT / "pyproject.toml", "rb") as file:
        return loader.load(file)


def _requires() -> list[str]:
    return [] if tomllib is not None else ["tomli>=1.1"]


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _requires()


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _requires()


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _requires()


def _names() -> tuple[dict[str, Any], str, str, str]:
    config = _pyproject()
    project = config["project"]
    package = config["tool"]["leepstream-build"]["package"]
    distribution = re.sub(r"[-_.]+", "_", project["name"]).lower()
    return project, package, distribution, project["version"]


def _metadata(project: dict[str, Any]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
    ]
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    for extra, requirements in sorted(project.get("optional-dependencies", {}).items()):
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {requirement}; extra == "{extra}"' for requirement in requirements]
    readme = project.get("readme")
    body = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        body = (ROOT / readme).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + body


def _package_files(package: str) -> list[tuple[str, bytes]]:
    source = ROOT / "src" / package
    files = []
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append((path.relative_to(ROOT / "src").as_posix(), path.read_bytes()))
    return files


def _write_wheel(directory: str, files: list[tuple[str, bytes]]) -> str:
    project, _, distribution, version = _names()
    dist_info = f"{distribution}-{version}.dist-info"
    files = files + [
        (f"{dist_info}/METADATA", _metadata(project).encode("utf-8")),
        (f"{dist_info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: leepstream_build\nRoot-Is-Purelib: true\n"
                               f"Tag: {TAG}\n".encode()),
    ]
    record = []
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    filename = f"{distribution}-{version}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files:
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return filename


def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    _, package, _, _ = _names()
    return _write_wheel(wheel_directory, _package_files(package))


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    _, package, distribution, _ = _names()
    return _write_wheel(wheel_directory, [(f"_{distribution}_editable.pth", f"{ROOT / 'src'}\n".encode())])


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    project, package, distribution, version = _names()
    base = f"{distribution}-{version}"
    members = [("PKG-INFO", _metadata(project).encode("utf-8"))]
    for relative in ("pyproject.toml", "README.md", "build_backend/leepstream_build.py"):
        members.append((relative, (ROOT / relative).read_bytes()))
    members += [(f"src/{name}", data) for name, data in _package_files(package)]
    filename = f"{base}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 315532800
            archive.addfile(info, io.BytesIO(data))
    with open(os.path.join(sdist_directory, filename), "wb") as file:
        with gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0) as compressed:
            compressed.write(buffer.getvalue())
    return filename
