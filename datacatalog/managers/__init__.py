"""Managers: the compatibility API of the system this package replaces.

The one manager family kept is :mod:`datacatalog.managers.pipelinejobs`.
"""
