"""The package as a worker gets it: Beam stages an sdist built from setup.py (``--setup_file``) and a
Dataflow worker installs it with nothing else of the repository beside it. setup.py reads the
core's runtime dependencies from requirements-core.txt, so the sdist must carry that file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def core_requirements() -> list[str]:
    lines = (REPO / "requirements-core.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def test_the_sdist_builds_and_its_setup_py_runs_alone(tmp_path: Path) -> None:
    # From the project's files alone, as a clean clone has them: an egg-info left in the working
    # tree by an editable install would otherwise list the files of an older build.
    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=clone,
                   check=True, capture_output=True)
    (archive,) = (tmp_path / "dist").glob("streamrec-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (root,) = (tmp_path / "unpacked").iterdir()
    assert (root / "requirements-core.txt").read_text() == (REPO / "requirements-core.txt").read_text()
    # What a worker's pip does first: run the unpacked setup.py, away from the repository.
    egg = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)], cwd=root,
                         check=True, capture_output=True, text=True)
    assert egg.returncode == 0
    lines = (tmp_path / "streamrec.egg-info" / "requires.txt").read_text().split("\n\n[", 1)[0].splitlines()
    requires = {Requirement(line) for line in lines if line.strip()}
    assert {Requirement(r) for r in core_requirements()} <= requires


def test_every_virtualenv_that_installs_the_core_reads_the_one_list() -> None:
    """The PyFlink job's and the pipeline peers' virtualenvs install the core without Beam's pin
    (``pip install --no-deps -e .``); the core's dependencies come from requirements-core.txt, not
    a copy that drifts (the peers' copy lacked msgspec once, and every peer stopped installing)."""
    for script in ("infra/local/fetch-flink.sh", "bench/peers/install.sh"):
        text = (REPO / script).read_text()
        assert '-r "$ROOT/requirements-core.txt"' in text, script
        for requirement in core_requirements():
            name = requirement.split(">", 1)[0].split("=", 1)[0].split("<", 1)[0]
            assert f"'{name}" not in text, f"{script} pins {name} itself"
