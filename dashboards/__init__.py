"""What people look at: Grafana dashboards (JSON + provisioning), the HTML report, FinOps SQL."""
