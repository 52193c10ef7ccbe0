"""python -m pyexec, and the pyexec command."""

import sys


def main() -> None:
    # Typer, rich and the extension take most of the start-up: Ctrl-C while they load exits quietly too.
    try:
        from .cli import main as run_cli
    except KeyboardInterrupt:
        sys.exit(130)  # errors.EXIT_INTERRUPTED, not imported: that too could be interrupted
    run_cli()


if __name__ == "__main__":
    main()
