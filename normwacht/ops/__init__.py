"""Operations as code: what Prometheus, Alertmanager and Grafana are given, derived from the
catalogue and calendars so that each fact lives in one place."""
