"""The ASGI application: the OneSignal-compatible API and the dashboard."""
