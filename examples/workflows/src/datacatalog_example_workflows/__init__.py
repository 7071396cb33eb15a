"""Example workflows for the datacatalog workflow runner."""
