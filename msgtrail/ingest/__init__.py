"""Ingestion: events from the API's batches, provider webhooks (connectors) and
OneSignal's own files, attributed to messages and committed in groups."""

# The providers whose webhooks msgtrail takes, by name: what the command line offers
# without importing the connectors (msgtrail.ingest.connectors.SOURCES, the same names;
# a test keeps the two equal).
SOURCE_NAMES = ("onesignal", "sendgrid", "ses", "twilio", "postmark", "mailgun")
