"""``python -m ganlab`` (and ``torchrun -m ganlab``) runs the CLI."""

from ganlab.cli import main

if __name__ == "__main__":
    main()
