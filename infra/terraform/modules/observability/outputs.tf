output "alert_policy_ids" {
  description = "Alert policy ids by alert (feed_p99, pipeline_lag, dlq_rate)."
  value       = { for key, policy in google_monitoring_alert_policy.alerts : key => policy.name }
}

output "alert_queries" {
  description = "The PromQL each alert evaluates (handy to paste into Metrics Explorer)."
  value       = { for key, alert in local.alerts : key => alert.query }
}
