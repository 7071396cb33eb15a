"""``python -m datacatalog.cli``: the ``datacatalog`` command without its console script."""

from datacatalog.cli.main import main

if __name__ == "__main__":
    main()
