"""Exports: jobs, the pipeline that writes files, their formats and the app-level activity feed."""
