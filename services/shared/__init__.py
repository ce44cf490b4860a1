"""What every service shares: Kafka settings and topics, logging, problem details."""
