"""The `msgtrail` command's entry point (and `python -m msgtrail`)."""

import os


def run() -> None:
    # Before anything imports pyarrow, which picks its default allocator then: the
    # system's, not mimalloc, which once set up keeps memory resident in its own region
    # (msgtrail/runtime/allocators.py says why; docs/benchmarks.md, "Memory", by how
    # much). Processes the command starts (`serve --processes N`) inherit it.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from msgtrail.cli import main

    main()


if __name__ == "__main__":
    run()
