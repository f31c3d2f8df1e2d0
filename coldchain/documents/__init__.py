"""Documents a person reads, rendered from the domain's read models: the excursion investigation report as an HTML
body (the portal embeds it), a whole HTML document for print and a PDF, with vector temperature charts; the
shipment certificate for print from the same sections, and its PAdES signature with the JSON form attached; the
notification emails, as plain text and HTML from one model (:mod:`coldchain.documents.email`).

Renderings show what the read model holds and never compute a rule. The package imports only
:mod:`coldchain.domain` and third-party libraries (Jinja, MarkupSafe, WeasyPrint, pyHanko, cryptography); the edge
(:mod:`coldchain.http`) imports it.
"""
