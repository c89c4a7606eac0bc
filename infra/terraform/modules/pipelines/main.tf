# The streaming pipeline (pipelines/main.py), one code base, two production runners:
#   runner = "dataflow": a Dataflow Flex Template job (Streaming Engine, throughput autoscaling).
#   runner = "flink":    a FlinkDeployment (application mode) managed by the Flink Kubernetes
#                        Operator on the GKE cluster; an init container runs the very same
#                        `python -m pipelines.main --runner=FlinkRunner ...` to write the job jar,
#                        Python DoFns run in a Beam SDK worker-pool sidecar of each TaskManager.
# Both read Kafka and write the store with the same options, built once in local.pipeline_options.
#   runner = "flink" with flink_job = "pyflink" (the default): the FlinkDeployment runs the PyFlink
#                        job pipelines/flink/job.py instead (Flink 2.3, Python in thread mode in
#                        the TaskManagers, RocksDB state, checkpoints to GCS); the same core rules.

locals {
  use_dataflow      = var.runner == "dataflow"
  use_flink         = var.runner == "flink"
  use_pyflink       = local.use_flink && var.flink_job == "pyflink"
  use_beam_on_flink = local.use_flink && var.flink_job == "beam"
  bucket            = "${var.project_id}-${var.name}-pipeline"

  # Options every runner passes to pipelines.main (as --name=value; pipelines/main.py parse_args).
  # pipelines.main turns streaming on by itself when it reads Kafka.
  pipeline_options = merge({
    bootstrap = var.kafka_bootstrap
    store     = var.store_url
    group     = var.consumer_group
  }, var.extra_pipeline_options)

  flink_jar = "/opt/flink/usrlib/streamrec-pipeline.jar"

  flink_build_args = concat(
    [
      "--runner=FlinkRunner",
      "--streaming",
      "--output_executable_path=${local.flink_jar}",
      "--flink_version=${replace(trimprefix(var.flink_version, "v"), "_", ".")}",
      "--flink_job_server_jar=/opt/beam/flink-job-server.jar",
      "--parallelism=${var.flink_parallelism}",
      "--checkpointing_interval=${var.checkpoint_interval_ms}",
      # DoFns run in the TaskManager's worker-pool sidecar.
      "--environment_type=EXTERNAL",
      "--environment_config=localhost:50000",
    ],
    [for option, value in local.pipeline_options : "--${option}=${value}"],
  )

  flink_ksa = "streamrec-flink"

  # Flink configuration both FlinkDeployments share (the Beam job on Flink 1.x, the PyFlink job on
  # 2.3); each adds its checkpoint keys, whose names differ between the two Flink versions.
  flink_configuration = {
    "taskmanager.numberOfTaskSlots" = tostring(var.flink_task_slots)
    "state.backend.type"            = "rocksdb"
    "state.backend.incremental"     = "true"
    "execution.checkpointing.mode"  = "EXACTLY_ONCE"
    "high-availability.type"        = "kubernetes"
    "high-availability.storageDir"  = "gs://${local.bucket}/ha"
    "restart-strategy.type"         = "exponential-delay"
    # Scraped by Managed Prometheus (observability module) for the lag and DLQ alerts.
    "metrics.reporter.prom.factory.class" = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
    "metrics.reporter.prom.port"          = "9249"
  }

  # The PyFlink job's arguments (pipelines/flink/job.py parse_args): the same Kafka, store and group
  # as every runner, its checkpoints in the bucket, RocksDB state, and the JobManager's REST service
  # (the job's held writes wait for its completed checkpoints).
  pyflink_args = concat(
    ["-py", "/opt/streamrec/pipelines/flink/job.py"],
    [for option, value in local.pipeline_options : "--${option}=${value}"],
    [
      "--rest=http://streamrec-flink-job-rest.${var.flink_namespace}:8081",
      "--name=streamrec",
      "--checkpoint_ms=${var.pyflink_checkpoint_interval_ms}",
      "--checkpoint_dir=gs://${local.bucket}/checkpoints",
      "--state_backend=rocksdb",
      "--parallelism=${var.flink_parallelism}",
      "--shards=${var.pyflink_title_shards}",
      "--jars=file:///opt/flink/usrlib/flink-sql-connector-kafka-5.0.0-2.2.jar",
    ],
  )
}

resource "google_storage_bucket" "pipeline" {
  project                     = var.project_id
  name                        = local.bucket
  location                    = var.region
  uniform_bucket_level_access = true
  force_destroy               = false

  # temp/ holds Dataflow scratch files; checkpoints/ and savepoints/ are kept.
  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["temp/"]
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_service_account" "pipeline" {
  project      = var.project_id
  account_id   = substr("${var.name}-pipeline", 0, 30)
  display_name = "streamrec pipeline workers (${var.name})"
}

resource "google_project_iam_member" "pipeline" {
  for_each = toset([
    "roles/dataflow.worker",
    "roles/managedkafka.client",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/artifactregistry.reader",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.pipeline.email}"
}

resource "google_storage_bucket_iam_member" "pipeline" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.pipeline.email}"
}

# --- Dataflow ---------------------------------------------------------------------------------

resource "google_dataflow_flex_template_job" "pipeline" {
  count    = local.use_dataflow ? 1 : 0
  provider = google-beta

  project                 = var.project_id
  region                  = var.region
  name                    = "${var.name}-pipeline"
  container_spec_gcs_path = var.dataflow_template_gcs_path
  sdk_container_image     = var.pipeline_image
  parameters              = local.pipeline_options

  service_account_email = google_service_account.pipeline.email
  subnetwork            = "https://www.googleapis.com/compute/v1/${var.subnet_id}"
  ip_configuration      = "WORKER_IP_PRIVATE"
  temp_location         = "gs://${local.bucket}/temp"
  staging_location      = "gs://${local.bucket}/staging"

  machine_type            = var.dataflow_machine_type
  num_workers             = var.dataflow_min_workers
  max_workers             = var.dataflow_max_workers
  autoscaling_algorithm   = "THROUGHPUT_BASED"
  enable_streaming_engine = true
  additional_experiments  = ["use_network_tags=${var.network_tag}"]

  # Drain on destroy/replace: in-flight windows and state are flushed, nothing is dropped.
  on_delete = "drain"

  lifecycle {
    precondition {
      condition     = startswith(var.dataflow_template_gcs_path, "gs://")
      error_message = "runner = \"dataflow\" needs dataflow_template_gcs_path (gs://...), built with `gcloud dataflow flex-template build`."
    }
  }
}

# --- Flink on GKE -----------------------------------------------------------------------------

resource "google_service_account_iam_member" "flink_workload_identity" {
  count              = local.use_flink ? 1 : 0
  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.workload_pool}[${var.flink_namespace}/${local.flink_ksa}]"
}

resource "kubernetes_namespace_v1" "flink" {
  count = local.use_flink ? 1 : 0
  metadata {
    name = var.flink_namespace
  }
}

resource "kubernetes_service_account_v1" "flink" {
  count = local.use_flink ? 1 : 0
  metadata {
    name      = local.flink_ksa
    namespace = kubernetes_namespace_v1.flink[0].metadata[0].name
    annotations = {
      "iam.gke.io/gcp-service-account" = google_service_account.pipeline.email
    }
  }
}

# Flink's native Kubernetes integration: the JobManager creates TaskManager pods and keeps its
# HA metadata in ConfigMaps.
resource "kubernetes_role_v1" "flink" {
  count = local.use_flink ? 1 : 0
  metadata {
    name      = local.flink_ksa
    namespace = kubernetes_namespace_v1.flink[0].metadata[0].name
  }

  rule {
    api_groups = [""]
    resources  = ["pods", "configmaps", "services"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  rule {
    api_groups = ["apps"]
    resources  = ["deployments"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  rule {
    api_groups = ["coordination.k8s.io"]
    resources  = ["leases"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }
}

resource "kubernetes_role_binding_v1" "flink" {
  count = local.use_flink ? 1 : 0
  metadata {
    name      = local.flink_ksa
    namespace = kubernetes_namespace_v1.flink[0].metadata[0].name
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.flink[0].metadata[0].name
  }

  subject {
    kind      = "ServiceAccount"
    name      = local.flink_ksa
    namespace = kubernetes_namespace_v1.flink[0].metadata[0].name
  }
}

resource "kubernetes_manifest" "flink_deployment" {
  count = local.use_beam_on_flink ? 1 : 0

  manifest = {
    apiVersion = "flink.apache.org/v1beta1"
    kind       = "FlinkDeployment"
    metadata = {
      name      = "streamrec-pipeline"
      namespace = kubernetes_namespace_v1.flink[0].metadata[0].name
    }
    spec = {
      image          = var.flink_image
      flinkVersion   = var.flink_version
      serviceAccount = local.flink_ksa

      flinkConfiguration = merge(local.flink_configuration, {
        "state.checkpoints.dir"            = "gs://${local.bucket}/checkpoints"
        "state.savepoints.dir"             = "gs://${local.bucket}/savepoints"
        "execution.checkpointing.interval" = "${var.checkpoint_interval_ms}ms"
      })

      # gs:// checkpoints need Flink's GCS filesystem plugin, shipped in opt/ of the image.
      podTemplate = {
        spec = {
          containers = [{
            name = "flink-main-container"
            env = [{
              name  = "ENABLE_BUILT_IN_PLUGINS"
              value = var.flink_gcs_plugin_jar
            }]
          }]
        }
      }

      jobManager = {
        replicas = 1
        resource = { memory = "2048m", cpu = 1 }
        podTemplate = {
          spec = {
            # Builds the job jar from the same pipeline code, with this environment's options.
            initContainers = [{
              name         = "build-pipeline-jar"
              image        = var.jar_builder_image
              command      = ["python", "-m", "pipelines.main"]
              args         = local.flink_build_args
              volumeMounts = [{ name = "usrlib", mountPath = "/opt/flink/usrlib" }]
            }]
            containers = [{
              name         = "flink-main-container"
              volumeMounts = [{ name = "usrlib", mountPath = "/opt/flink/usrlib" }]
            }]
            volumes = [{ name = "usrlib", emptyDir = {} }]
          }
        }
      }

      taskManager = {
        replicas = var.flink_taskmanagers
        resource = { memory = var.flink_taskmanager_memory, cpu = var.flink_taskmanager_cpu }
        podTemplate = {
          spec = {
            containers = [{
              name  = "beam-worker-pool"
              image = var.pipeline_image
              args  = ["--worker_pool"]
              ports = [{ containerPort = 50000, name = "beam-pool" }]
            }]
          }
        }
      }

      job = {
        jarURI      = "local://${local.flink_jar}"
        entryClass  = "org.apache.beam.runners.flink.FlinkPipelineRunner"
        parallelism = var.flink_parallelism
        # Upgrades take a savepoint and resume from it: no event is lost or counted twice.
        upgradeMode = "savepoint"
        state       = "running"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.jar_builder_image != "" && var.workload_pool != ""
      error_message = "runner = \"flink\" needs jar_builder_image and workload_pool."
    }
  }
}

# The PyFlink job (flink_job = "pyflink"): application mode, Flink's PythonDriver runs
# pipelines/flink/job.py from the image; Python functions run embedded in the TaskManagers
# (thread mode); keyed state in RocksDB, checkpoints (incremental) and savepoints in the bucket.
resource "kubernetes_manifest" "pyflink_deployment" {
  count = local.use_pyflink ? 1 : 0

  manifest = {
    apiVersion = "flink.apache.org/v1beta1"
    kind       = "FlinkDeployment"
    metadata = {
      name      = "streamrec-flink-job"
      namespace = kubernetes_namespace_v1.flink[0].metadata[0].name
    }
    spec = {
      image          = var.pyflink_image
      flinkVersion   = var.pyflink_version
      serviceAccount = local.flink_ksa

      flinkConfiguration = merge(local.flink_configuration, {
        "execution.checkpointing.dir"           = "gs://${local.bucket}/checkpoints"
        "execution.checkpointing.savepoint-dir" = "gs://${local.bucket}/savepoints"
        "execution.checkpointing.interval"      = "${var.pyflink_checkpoint_interval_ms}ms"
        "execution.checkpointing.num-retained"  = "3"
        # The job's held writes poll the REST API for completed checkpoints: no 3 s statistics cache.
        "web.refresh-interval"                     = "50"
        "rest.cache.checkpoint-statistics.timeout" = "50 ms"
        "python.execution-mode"                    = "thread"
        "python.executable"                        = "python3"
        "python.fn-execution.bundle.size"          = "10"
        "python.fn-execution.bundle.time"          = "20"
      })

      podTemplate = {
        spec = {
          containers = [{
            name = "flink-main-container"
            env = [
              { name = "ENABLE_BUILT_IN_PLUGINS", value = var.pyflink_gcs_plugin_jar },
              # thread mode: the embedded interpreter imports pemja and streamrec from here
              { name = "PYTHONPATH", value = "/opt/streamrec" },
            ]
          }]
        }
      }

      jobManager = {
        replicas = 1
        resource = { memory = "2048m", cpu = 1 }
      }

      taskManager = {
        replicas = var.flink_taskmanagers
        resource = { memory = var.flink_taskmanager_memory, cpu = var.flink_taskmanager_cpu }
      }

      job = {
        jarURI      = "local:///opt/flink/opt/flink-python-2.3.0.jar"
        entryClass  = "org.apache.flink.client.python.PythonDriver"
        args        = local.pyflink_args
        parallelism = var.flink_parallelism
        # Upgrades take a savepoint and resume from it: state and offsets move together.
        upgradeMode = "savepoint"
        state       = "running"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.pyflink_image != "" && var.workload_pool != ""
      error_message = "runner = \"flink\" with flink_job = \"pyflink\" needs pyflink_image and workload_pool."
    }
  }
}
