"""`python -m connectors.cli …` is the `docent` command."""

from connectors.cli.app import main

main()
