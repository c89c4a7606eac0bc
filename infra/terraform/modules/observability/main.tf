# Observability: Managed Service for Prometheus scrapes the service's /metrics (and Flink's
# reporter when Flink runs the pipeline) through PodMonitoring resources; three alert policies in
# Cloud Monitoring, written in PromQL, which reads both scraped metrics and Google's own
# (Dataflow's watermark age and user counters) under one query language.

locals {
  dataflow_job = "monitored_resource=\"dataflow_job\",job_name=\"${var.dataflow_job_name}\""
  dlq_counters = join("|", var.dlq_counters)

  feed_p99_query = format(
    "histogram_quantile(0.99, sum by (le) (rate(streamrec_http_request_duration_seconds_bucket{namespace=\"%s\",route=\"%s\"}[5m]))) > %s",
    var.serving_namespace, var.feed_route, var.feed_p99_threshold_ms / 1000,
  )

  default_lag_query = {
    # Age of the oldest event not yet fully processed, as Dataflow measures it.
    dataflow = "max(dataflow_googleapis_com:job_data_watermark_age{${local.dataflow_job}}) > ${var.pipeline_lag_threshold_s}"
    # Flink reports watermarks in epoch milliseconds; unset ones are negative and left out.
    flink = "time() - min(flink_taskmanager_job_task_currentInputWatermark{namespace=\"${var.flink_namespace}\"} > 0) / 1000 > ${var.pipeline_lag_threshold_s}"
  }

  default_dlq_query = {
    dataflow = "sum(rate(dataflow_googleapis_com:job_user_counter{${local.dataflow_job},metric_name=~\"${local.dlq_counters}\"}[5m])) > ${var.dlq_rate_threshold}"
    flink    = "sum(rate({__name__=~\"flink_taskmanager_job_task_operator_.*(${local.dlq_counters})\",namespace=\"${var.flink_namespace}\"}[5m])) > ${var.dlq_rate_threshold}"
  }

  alerts = {
    feed_p99 = {
      title = "Feed p99 latency above ${var.feed_p99_threshold_ms} ms"
      query = local.feed_p99_query
      doc   = "The feed endpoint's p99 latency has been above ${var.feed_p99_threshold_ms} ms for ${var.alert_duration}. Check the store's latency (Aerospike), the feed cache hit rate (streamrec_feed_cache_total) and whether the autoscaler is at max_replicas."
    }
    pipeline_lag = {
      title = "Pipeline lag above ${var.pipeline_lag_threshold_s} s"
      query = coalesce(var.pipeline_lag_query, local.default_lag_query[var.runner])
      doc   = "The streaming pipeline (${var.runner}) is more than ${var.pipeline_lag_threshold_s} s behind the events. Feeds are getting stale. Check worker count against max workers, Kafka consumer lag and store write errors."
    }
    dlq_rate = {
      title = "Dead-letter rate above ${var.dlq_rate_threshold}/s"
      query = coalesce(var.dlq_rate_query, local.default_dlq_query[var.runner])
      doc   = "Records are going to streamrec.events.dlq.v1 at more than ${var.dlq_rate_threshold}/s. Each carries its reason: read a few from the topic; usually a producer ships a schema the pipeline does not know."
    }
  }
}

resource "kubernetes_manifest" "serving_scrape" {
  manifest = {
    apiVersion = "monitoring.googleapis.com/v1"
    kind       = "PodMonitoring"
    metadata = {
      name      = "streamrec-serving"
      namespace = var.serving_namespace
    }
    spec = {
      selector = { matchLabels = var.serving_pod_labels }
      endpoints = [{
        port     = var.serving_metrics_port
        path     = "/metrics"
        interval = "15s"
      }]
    }
  }
}

resource "kubernetes_manifest" "flink_scrape" {
  count = var.runner == "flink" ? 1 : 0
  manifest = {
    apiVersion = "monitoring.googleapis.com/v1"
    kind       = "PodMonitoring"
    metadata = {
      name      = "streamrec-pipeline"
      namespace = var.flink_namespace
    }
    spec = {
      selector = { matchLabels = { app = "streamrec-pipeline" } }
      endpoints = [{
        port     = 9249
        path     = "/metrics"
        interval = "30s"
      }]
    }
  }
}

resource "google_monitoring_alert_policy" "alerts" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = "${var.name}: ${each.value.title}"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = each.value.title
    condition_prometheus_query_language {
      query               = each.value.query
      duration            = var.alert_duration
      evaluation_interval = "60s"
    }
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }

  alert_strategy {
    auto_close = "1800s"
  }
}
