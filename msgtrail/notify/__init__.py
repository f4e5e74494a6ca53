"""Telling people an export ended: signed completion webhooks and email."""
