"""Alerts: rules evaluated as lifts are stored, alerts kept in the database, and a durable
delivery queue sending each one to a webhook, e-mail and MQTT (see docs/dashboard.md)."""
