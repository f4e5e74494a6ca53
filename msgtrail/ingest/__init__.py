"""Ingestion: events from the API's batches, provider webhooks (connectors) and
OneSignal's own files, attributed to messages and committed in groups."""
