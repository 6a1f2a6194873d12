"""The masterplan benchmark (SPEC §9): a seeded synthetic SCM data set and timed runs.

``python -m bench --skus N`` measures the product path (read, upload, plan,
stream back, write) through a real server process; ``--engine-only`` times
the planning engine alone. See ``bench/README.md``.
"""
