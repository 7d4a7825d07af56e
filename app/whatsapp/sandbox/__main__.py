import os
import sys

from .cli import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # granian's embedded server leaves Rust threads that may panic during interpreter finalisation;
    # everything is flushed and closed by now, so leave without finalising.
    os._exit(code)
