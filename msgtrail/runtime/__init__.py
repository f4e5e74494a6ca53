"""Background work: the worker that runs jobs, upkeep and retention, and the memory
allocator settings of a process."""
