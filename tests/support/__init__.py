"""Plain code shared by the test folders: catalogs to test on, clocks, runners, workloads.

Fixtures live in the ``conftest.py`` files; what they build lives here, imported as
``tests.support.<module>``. No test module imports another test module.
"""
