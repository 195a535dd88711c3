"""The reliability and security suite (issue 12): scenarios against real parts, one table.

``python3 dev.py chaos`` runs every scenario at full size and writes the table into
docs/reliability.md; ``python3 dev.py test`` runs each at its reduced size (test_scenarios.py).
"""
