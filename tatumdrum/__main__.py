"""`python -m tatumdrum` and the `tatumdrum` command: Ctrl-C while the libraries load is one line too."""
from . import interrupt


def main() -> None:
    interrupt.install()
    try:
        from .cli import main as cli_main

        interrupt.check()
    except KeyboardInterrupt:
        interrupt.exit_interrupted()
    try:
        cli_main()
    finally:
        interrupt.finished()


if __name__ == "__main__":
    main()
