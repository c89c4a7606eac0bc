"""What real Terraform can evaluate offline: templates, module locals and the environments' inputs.

A root module without providers applies offline, so the Aerospike templates are rendered with
``templatefile`` exactly as the module renders them, the ``locals`` of the pipelines, kafka
and observability modules are evaluated from the modules' own text and variables (their
expressions, defaults and validations run for real; only the resources are left out), and each
environment's terraform.tfvars is converted with the composition's (modules/streamrec) variable
types, ``optional()`` defaults and validations.

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

from tests.infra.terraform_files import (
    ENVS,
    MODULES,
    env_dirs,
    evaluate_environment_inputs,
    evaluate_locals,
    load,
    plain,
    read_config,
    terraform,
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
    tf = terraform(root)  # no providers, modules or backend: no `terraform init` needed
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


# --- the pipelines module's locals ------------------------------------------------------------


PIPELINE_INPUTS = {
    "project_id": "p",
    "region": "us-central1",
    "name": "streamrec-test",
    "pipeline_image": "image",
    "kafka_bootstrap": "bootstrap.example:9092",
    "store_url": "aerospike://10.0.0.1:3000/streamrec",
    "subnet_id": "projects/p/regions/us-central1/subnetworks/s",
    "network_tag": "tag",
}


@pytest.fixture(scope="module")
def pipeline_locals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pipelines module's locals, evaluated by Terraform with the module's own variables."""
    root = tmp_path_factory.mktemp("pipelines-locals")
    return evaluate_locals(
        MODULES / "pipelines",
        root,
        ["flink_build_args", "pipeline_options"],
        PIPELINE_INPUTS,
    )


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


# --- the kafka module's locals: what Terraform creates is what the code would create ------------


def test_kafka_topic_settings_equal_the_codes_production_specs(tmp_path: Path) -> None:
    kafka = pytest.importorskip(
        "streamrec.kafka", reason="streamrec.kafka holds topic_specs()"
    )
    inputs = {
        "project_id": "p",
        "region": "us-central1",
        "cluster_id": "c",
        "subnet_id": "s",
    }
    evaluated = evaluate_locals(MODULES / "kafka", tmp_path, ["topic_configs"], inputs)
    assert evaluated["topic_configs"] == {
        spec.name: spec.config for spec in kafka.topic_specs()
    }


# --- the observability module's locals: alert queries for both runners ---------------------------

OBSERVABILITY_INPUTS = {
    "project_id": "p",
    "name": "streamrec-test",
    "serving_namespace": "streamrec",
    "serving_pod_labels": '{"app.kubernetes.io/name" = "streamrec-serving"}',
    "dataflow_job_name": "streamrec-test-pipeline",
}


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The three alerts per runner, from the module's own expressions."""
    root = tmp_path_factory.mktemp("observability-locals")
    return {
        runner: evaluate_locals(
            MODULES / "observability",
            root,
            ["alerts"],
            OBSERVABILITY_INPUTS | {"runner": runner},
        )["alerts"]
        for runner in ("dataflow", "flink")
    }


def test_alerts_cover_feed_latency_pipeline_lag_and_dead_letters(
    alerts: dict[str, dict[str, Any]],
) -> None:
    for runner, by_name in alerts.items():
        assert set(by_name) == {"feed_p99", "pipeline_lag", "dlq_rate"}, runner
        for alert in by_name.values():
            query = alert["query"]
            assert query.count("(") == query.count(")") and query.count(
                "{"
            ) == query.count("}")
            assert re.search(r"> [0-9.]+$", query), (
                f"{runner}: {query!r} has no threshold"
            )
    assert (
        "dataflow_googleapis_com:job_data_watermark_age"
        in alerts["dataflow"]["pipeline_lag"]["query"]
    )
    assert (
        'job_name="streamrec-test-pipeline"' in alerts["dataflow"]["dlq_rate"]["query"]
    )
    assert "flink_taskmanager" in alerts["flink"]["pipeline_lag"]["query"]


def test_feed_p99_alert_reads_the_services_own_histogram(
    alerts: dict[str, dict[str, Any]],
) -> None:
    metrics = pytest.importorskip(
        "serving.metrics", reason="serving/metrics.py defines the histogram"
    )
    routes = pytest.importorskip(
        "serving.routes", reason="serving/routes.py defines the feed route"
    )
    families = {
        family.name: family.type
        for family in metrics.ServingMetrics().registry.collect()
    }
    query = alerts["dataflow"]["feed_p99"]["query"]
    histogram = re.search(r"rate\((\w+)_bucket\{", query)
    assert histogram is not None and families.get(histogram.group(1)) == "histogram"
    route = re.search(r'route="([^"]+)"', query)
    # Route templates as metrics label them: "{user_id:[^/]+}" is "{user_id}".
    templates = {re.sub(r"\{(\w+):[^}]*\}", r"{\1}", r.path) for r in routes.ROUTES}
    assert route is not None and route.group(1) in templates
    assert query.endswith("> 0.025")  # 25 ms, in the histogram's unit (seconds)


# --- each environment's tfvars, converted by Terraform with the composition's types ------------


def dropped_fields(tfvars: dict[str, Any], evaluated: dict[str, Any]) -> list[str]:
    """Fields set in tfvars that did not come through Terraform's type conversion as given.

    Terraform silently drops object attributes its type does not declare (a misspelled field
    would fall back to the default), so the converted value is compared field by field.
    """
    lost = []
    for name, value in tfvars.items():
        if isinstance(value, dict):
            converted = evaluated.get(name) or {}
            lost += [
                f"{name}.{field}"
                for field, given in value.items()
                if field not in converted or converted[field] != given
            ]
        elif evaluated.get(name) != value:
            lost.append(name)
    return lost


@pytest.mark.parametrize("env", env_dirs(), ids=lambda p: p.name)
def test_tfvars_convert_to_the_compositions_types_without_losing_a_field(
    env: Path, tmp_path: Path
) -> None:
    evaluated = evaluate_environment_inputs(env, tmp_path)
    assert dropped_fields(plain(load(env / "terraform.tfvars")), evaluated) == []
    # Left-out fields take the composition's defaults, so every field has a value.
    assert evaluated["pipeline"]["runner"] in {"dataflow", "flink"}
    assert evaluated["serving"]["min_replicas"] <= evaluated["serving"]["max_replicas"]
    assert evaluated["gke"]["spot_nodes"] is (env.name != "prod")


def test_misspelled_tfvars_field_is_caught(tmp_path: Path) -> None:
    # The check above is only worth something if a field Terraform drops is reported.
    env = tmp_path / "envs" / "typo"
    env.mkdir(parents=True)
    shutil.copy(ENVS / "dev" / "main.tf", env / "main.tf")
    (env / "terraform.tfvars").write_text(
        'project_id = "p"\nenv = "typo"\nregion = "europe-west1"\nkafka = { vcpu_cout = 6 }\n'
        'pipeline = { image = "i" }\nserving = { image = "s", domain = "d.example.com" }\n'
    )
    root = tmp_path / "root"
    root.mkdir()
    evaluated = evaluate_environment_inputs(env, root)
    assert evaluated["kafka"] == {"vcpu_count": 3, "memory_gib": 12}
    # zones are not in the tfvars: the root forwards null, the composition takes its default.
    assert evaluated["zones"] == ["us-central1-a", "us-central1-b"]
    assert evaluated["region"] == "europe-west1"
    assert dropped_fields(plain(load(env / "terraform.tfvars")), evaluated) == [
        "kafka.vcpu_cout"
    ]
