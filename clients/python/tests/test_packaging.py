"""The in-tree build backend makes an installable, reproducible wheel and sdist (no network,
no setuptools): pip itself is exercised by hand, see README.md."""

from __future__ import annotations

import base64
import hashlib
import pathlib
import sys
import tarfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "build_backend"))
import leepstream_build  # noqa: E402


def test_wheel(tmp_path):
    name = leepstream_build.build_wheel(str(tmp_path))
    assert name == "leepstream-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / name) as wheel:
        names = set(wheel.namelist())
        assert {"leepstream/__init__.py", "leepstream/wire.py", "leepstream/producer.py", "leepstream/validation.py",
                "leepstream/scores.py", "leepstream/py.typed", "leepstream-0.1.0.dist-info/METADATA", "leepstream-0.1.0.dist-info/WHEEL",
                "leepstream-0.1.0.dist-info/RECORD"} == names
        metadata = wheel.read("leepstream-0.1.0.dist-info/METADATA").decode()
        assert "Name: leepstream\nVersion: 0.1.0\n" in metadata
        assert "Requires-Dist: numpy>=1.24\nRequires-Dist: confluent-kafka>=2.3\n" in metadata
        # pandas is an extra: only Leaderboard.to_pandas needs it.
        assert 'Provides-Extra: pandas\nRequires-Dist: pandas>=1.5; extra == "pandas"\n' in metadata
        for line in wheel.read("leepstream-0.1.0.dist-info/RECORD").decode().splitlines():
            path, digest, size = line.split(",")
            if digest:
                data = wheel.read(path)
                assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
                    b"=").decode() and int(size) == len(data)
    first = (tmp_path / name).read_bytes()
    leepstream_build.build_wheel(str(tmp_path))
    assert (tmp_path / name).read_bytes() == first  # reproducible


def test_sdist_and_editable(tmp_path):
    name = leepstream_build.build_sdist(str(tmp_path))
    with tarfile.open(tmp_path / name) as sdist:
        assert "leepstream-0.1.0/src/leepstream/wire.py" in sdist.getnames()
        assert "leepstream-0.1.0/build_backend/leepstream_build.py" in sdist.getnames()
    editable = leepstream_build.build_editable(str(tmp_path))
    with zipfile.ZipFile(tmp_path / editable) as wheel:
        assert wheel.read("_leepstream_editable.pth").decode().strip() == str(HERE / "src")
