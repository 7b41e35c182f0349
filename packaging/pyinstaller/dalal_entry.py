"""PyInstaller entry point: the frozen ``dalal`` executable is ``app.cli:main``."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not re-run the CLI
    sys.exit(main())
