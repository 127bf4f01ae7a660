"""``python -m ctxmigrate``: the same entry point as the ``ctxmigrate`` script."""

from ctxmigrate.cli.main import main

if __name__ == "__main__":
    main()
