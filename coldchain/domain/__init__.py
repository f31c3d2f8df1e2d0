"""The domain: readings, stability profiles and rules, MKT, budgets, excursions, sync bookkeeping, the audit
chain and OsmAnd decoding. Pure: no I/O, no clock (callers pass ``now``), no framework. Imports nothing of
coldchain outside this package.
"""
