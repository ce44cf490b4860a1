"""The notifier: outcomes of clocks to Alertmanager alerts, one per clock and alertname."""
