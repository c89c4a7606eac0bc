variable "project_id" {
  type        = string
  description = "Google Cloud project of the pipeline."
}

variable "region" {
  type        = string
  description = "Region the pipeline runs in (Dataflow regional endpoint, bucket location)."
}

variable "name" {
  type        = string
  description = "Prefix of names (job, bucket, service account), e.g. \"streamrec-dev\"."
}

variable "runner" {
  type        = string
  description = "Where the streaming pipeline runs: \"dataflow\" (Flex Template job) or \"flink\" (FlinkDeployment on GKE through the Flink Kubernetes Operator)."
  default     = "dataflow"

  validation {
    condition     = contains(["dataflow", "flink"], var.runner)
    error_message = "runner must be \"dataflow\" or \"flink\"."
  }
}

variable "pipeline_image" {
  type        = string
  description = "Container image with apache-beam's SDK and streamrec installed: Dataflow's worker image and Flink's SDK-harness sidecar alike."
}

variable "kafka_bootstrap" {
  type        = string
  description = "Kafka bootstrap servers (kafka module output)."
}

variable "store_url" {
  type        = string
  description = "Store URL the pipeline writes state to (aerospike module output)."
}

variable "consumer_group" {
  type        = string
  description = "Kafka consumer group of the pipeline."
  default     = "streamrec-pipeline"
}

variable "extra_pipeline_options" {
  type        = map(string)
  description = "More pipeline options (name without leading dashes => value), passed to `python -m pipelines.main` on both runners."
  default     = {}
}

variable "subnet_id" {
  type        = string
  description = "Subnet self link the Dataflow workers run in (private IPs only)."
}

variable "network_tag" {
  type        = string
  description = "Network tag for Dataflow workers (network module's dataflow_tag)."
}

# --- Dataflow -------------------------------------------------------------------------------

variable "dataflow_template_gcs_path" {
  type        = string
  description = "gs:// path of the Flex Template spec built by `gcloud dataflow flex-template build` (runner = dataflow)."
  default     = ""
}

variable "dataflow_machine_type" {
  type        = string
  description = "Dataflow worker machine type."
  default     = "n2-standard-4"
}

variable "dataflow_min_workers" {
  type        = number
  description = "Workers the job starts with (the autoscaler's floor)."
  default     = 1
}

variable "dataflow_max_workers" {
  type        = number
  description = "Most workers the throughput-based autoscaler may add."
  default     = 3
}

# --- Flink on GKE ---------------------------------------------------------------------------

variable "workload_pool" {
  type        = string
  description = "Workload Identity pool of the GKE cluster (gke module output); used when runner = flink."
  default     = ""
}

variable "flink_namespace" {
  type        = string
  description = "Kubernetes namespace of the Flink session cluster (the Flink Kubernetes Operator must watch it)."
  default     = "streamrec-flink"
}

variable "flink_image" {
  type        = string
  description = "Flink image for JobManager and TaskManagers (a version the Beam Flink runner supports)."
  default     = "flink:1.20-java17"
}

variable "flink_version" {
  type        = string
  description = "FlinkDeployment flinkVersion, matching flink_image."
  default     = "v1_20"
}

variable "flink_gcs_plugin_jar" {
  type        = string
  description = "File name of the GCS filesystem plugin in the Flink image's opt/ directory (enabled for gs:// checkpoints)."
  default     = "flink-gs-fs-hadoop-1.20.1.jar"
}

variable "jar_builder_image" {
  type        = string
  description = "Image (pipeline_image plus a JRE and Beam's Flink job-server jar at /opt/beam/flink-job-server.jar) whose init container runs `python -m pipelines.main --runner=FlinkRunner --output_executable_path=...` to build the job jar at JobManager start (runner = flink)."
  default     = ""
}

variable "flink_parallelism" {
  type        = number
  description = "Pipeline parallelism on Flink; at most the events topic's partition count is useful for the Kafka read (the PyFlink job keys user state by partition)."
  default     = 2
}

variable "flink_taskmanagers" {
  type        = number
  description = "TaskManager pods of the session cluster."
  default     = 1
}

variable "flink_task_slots" {
  type        = number
  description = "Task slots per TaskManager."
  default     = 2
}

variable "flink_taskmanager_memory" {
  type        = string
  description = "Memory of a TaskManager pod (Flink memory syntax)."
  default     = "4096m"
}

variable "flink_taskmanager_cpu" {
  type        = number
  description = "CPUs of a TaskManager pod."
  default     = 2
}

variable "checkpoint_interval_ms" {
  type        = number
  description = "Flink checkpoint interval; after a failure the job resumes from the last checkpoint (state and each partition's read position), so this bounds the replay."
  default     = 30000
}

# --- the PyFlink job (runner = "flink", flink_job = "pyflink") -----------------------------------

variable "flink_job" {
  type        = string
  description = "What the FlinkDeployment runs (runner = flink): \"pyflink\", the PyFlink job pipelines/flink/job.py (Flink 2.3, exactly-once store writes after completed checkpoints), or \"beam\", the Beam pipeline through Beam's Flink runner (needs jar_builder_image)."
  default     = "pyflink"

  validation {
    condition     = contains(["pyflink", "beam"], var.flink_job)
    error_message = "flink_job must be \"pyflink\" or \"beam\"."
  }
}

variable "pyflink_image" {
  type        = string
  description = "Image for the PyFlink job (flink_job = pyflink): flink:2.3.0-java17 plus Python 3.11 with apache-flink==2.3.0, streamrec installed (`pip install --no-deps .` + fastavro, numpy, confluent-kafka, aerospike), the repository at /opt/streamrec and flink-sql-connector-kafka-5.0.0-2.2.jar in /opt/flink/usrlib."
  default     = ""
}

variable "pyflink_version" {
  type        = string
  description = "FlinkDeployment flinkVersion of the PyFlink job (matches pyflink_image)."
  default     = "v2_3"
}

variable "pyflink_gcs_plugin_jar" {
  type        = string
  description = "File name of the GCS filesystem plugin in the PyFlink image's opt/ directory (gs:// checkpoints)."
  default     = "flink-gs-fs-hadoop-2.3.0.jar"
}

variable "pyflink_checkpoint_interval_ms" {
  type        = number
  description = "Checkpoint interval of the PyFlink job. Its user and item writes wait for a completed checkpoint, so this is most of their freshness (docs/pipelines.md, \"The Flink job\")."
  default     = 1000
}

variable "pyflink_title_shards" {
  type        = number
  description = "Key groups of the item totals (co-watch rows, counts, vectors) in the PyFlink job: at least the parallelism."
  default     = 64
}
