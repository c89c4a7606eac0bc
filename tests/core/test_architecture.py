"""The import directions of docs/architecture.md, enforced: every module of every package is
parsed (not imported) and each import of one of our packages is checked against the table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = frozenset({"streamrec", "pipelines", "serving", "evaluation", "streamrec_cli", "bench", "tests"})
#: Who may import whom (docs/architecture.md, "Packages and who may import whom").
MAY_IMPORT = {
    "streamrec": {"streamrec"},
    "pipelines": {"streamrec", "pipelines"},
    "serving": {"streamrec", "serving"},
    "evaluation": {"streamrec", "evaluation"},
    "streamrec_cli": {"streamrec", "pipelines", "serving", "evaluation", "streamrec_cli"},
}
#: What the core, which every pipeline worker installs, must not carry: process management,
#: command-line parsing, progress bars and plotting belong to the command line.
NOT_IN_THE_CORE = frozenset({"subprocess", "argparse", "tqdm", "matplotlib", "signal"})


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_each_package_imports_only_what_the_table_allows(package: str) -> None:
    wrong = [f"{path.relative_to(REPO)}:{line}: imports {name}"
             for path in modules(package) for line, name in imports(path)
             if name.split(".")[0] in OURS and name.split(".")[0] not in MAY_IMPORT[package]]
    assert modules(package) and not wrong, "\n".join(wrong)


def test_the_core_carries_no_process_management_parsing_or_plotting() -> None:
    wrong = [f"{path.relative_to(REPO)}:{line}: imports {name}"
             for path in modules("streamrec") for line, name in imports(path)
             if name.split(".")[0] in NOT_IN_THE_CORE]
    assert not wrong, "\n".join(wrong)


def test_the_maths_depends_on_the_domain_model_not_on_the_storage_contract() -> None:
    wrong = [f"{path.relative_to(REPO)}:{line}: imports {name}"
             for path in sorted((REPO / "streamrec" / "recommend").rglob("*.py")) for line, name in imports(path)
             if name == "streamrec.store" or name.startswith("streamrec.store.")]
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from serving.feed import compose_feed\nimport streamrec_cli.main as m\n")
    assert [name for _, name in imports(bad)] == ["serving.feed", "streamrec_cli.main"]
