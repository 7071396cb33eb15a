"""Support for the project's own tests and benchmarks; not used by the product itself.

``datacatalog.testing.mongod`` starts and stops a throw-away real MongoDB server
(``server.py``) or replica set (``replicaset.py``), through the product's own launcher
(``datacatalog.local.launcher``). Import it explicitly: this package does not import it,
so importing ``datacatalog.testing`` stays free.
"""
