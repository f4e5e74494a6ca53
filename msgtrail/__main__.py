"""The `msgtrail` command's entry point (and `python -m msgtrail`)."""

import atexit
import os
import sys


def run() -> None:
    # Before anything imports pyarrow, which picks its default allocator then: the
    # system's, not mimalloc, which once set up keeps memory resident in its own region
    # (msgtrail/runtime/allocators.py says why; docs/benchmarks.md, "Memory", by how
    # much). Processes the command starts (`serve --processes N`) inherit it.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from msgtrail.cli import main

    try:
        main()
    except SystemExit as stop:
        code = stop.code
    else:
        code = 0
    files = sys.modules.get("msgtrail.client._files")
    if not getattr(files, "used_arrow", False):
        sys.exit(code)
    # `msgtrail export` converted or read Parquet: pyarrow's thread pools now and then
    # aborted the process in the interpreter's teardown ("terminate called without an
    # active exception", status -6), after the file was published. Its work done, it
    # runs the exit handlers and ends without that teardown.
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    run()
