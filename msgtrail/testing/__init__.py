"""Real services for msgtrail's tests and benchmarks: a SeaweedFS S3 server, the two
configurations (embedded, and PostgreSQL + S3 + Redis), and `msgtrail serve` started
as a process. The in-memory blob store for tests is `msgtrail.files.MemoryStore`."""
