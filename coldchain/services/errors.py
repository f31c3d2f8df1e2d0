"""What a use case refuses, in words the edge maps once to HTTP statuses (400, 404, 403, 409, 422).

Exceptions::

    ServiceError
    ├── Malformed       the document sent cannot be read at all (not JSON, not UTF-8, nested too deep)
    ├── NotFound        no such record, or none the caller may see (never say which)
    ├── Forbidden       the caller's role does not allow the action
    ├── Conflict        the record's current state does not allow the change
    ├── Invalid         the request is well-formed but its content is wrong
    └── Busy            the answer cannot be given consistently right now; the same request may succeed soon
"""

from __future__ import annotations

__all__ = ["Busy", "Conflict", "Forbidden", "Invalid", "Malformed", "NotFound", "ServiceError"]


class ServiceError(Exception):
    """A use case refused the request; the message says why, for the caller."""


class Malformed(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class Invalid(ServiceError):
    pass


class Busy(ServiceError):
    pass
