variable "project_id" {
  type        = string
  description = "Google Cloud project whose Cloud Monitoring holds the alert policies."
}

variable "name" {
  type        = string
  description = "Prefix of alert policy names, e.g. \"streamrec-dev\"."
}

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) the alerts go to."
  default     = []
}

variable "serving_namespace" {
  type        = string
  description = "Kubernetes namespace of the serving pods (serving module output)."
}

variable "serving_pod_labels" {
  type        = map(string)
  description = "Labels selecting the serving pods (serving module output)."
}

variable "serving_metrics_port" {
  type        = string
  description = "Name of the serving container port that answers /metrics."
  default     = "http"
}

variable "runner" {
  type        = string
  description = "Pipeline runner (\"dataflow\" or \"flink\"): decides where pipeline lag and DLQ metrics come from."

  validation {
    condition     = contains(["dataflow", "flink"], var.runner)
    error_message = "runner must be \"dataflow\" or \"flink\"."
  }
}

variable "dataflow_job_name" {
  type        = string
  description = "Name of the Dataflow job (runner = dataflow)."
  default     = ""
}

variable "flink_namespace" {
  type        = string
  description = "Namespace of the FlinkDeployment (runner = flink); its pods are scraped on the Prometheus reporter port 9249."
  default     = "streamrec-flink"
}

variable "feed_route" {
  type        = string
  description = "Route label of the feed endpoint in streamrec_http_request_duration_seconds."
  default     = "/v1/users/{user_id}/feed"
}

variable "feed_p99_threshold_ms" {
  type        = number
  description = "Alert when the feed's p99 latency stays above this many milliseconds (the target is 10 ms; the default leaves room for noise)."
  default     = 25
}

variable "pipeline_lag_threshold_s" {
  type        = number
  description = "Alert when the pipeline's event-time lag (watermark age) stays above this many seconds."
  default     = 60
}

variable "dlq_rate_threshold" {
  type        = number
  description = "Alert when records go to the dead-letter topic faster than this many per second."
  default     = 1
}

variable "dlq_counters" {
  type        = list(string)
  description = "Names of the pipeline's Beam counters of records sent to the DLQ (pipelines/decode.py dead_letters, pipelines/user_state.py rejected_events)."
  default     = ["dead_letters", "rejected_events"]
}

variable "alert_duration" {
  type        = string
  description = "How long a condition must hold before an alert opens."
  default     = "300s"
}

variable "pipeline_lag_query" {
  type        = string
  description = "PromQL that returns series only while the pipeline lags; null = the runner's default."
  default     = null
}

variable "dlq_rate_query" {
  type        = string
  description = "PromQL that returns series only while the DLQ rate is too high; null = the runner's default."
  default     = null
}
