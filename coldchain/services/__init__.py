"""Services: the use cases. Each loads what it needs, calls the domain, and saves, in one transaction.

May import ``coldchain.storage`` and ``coldchain.domain``; never the HTTP edge or the jobs.
"""
