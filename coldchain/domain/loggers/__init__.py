"""Parsers for files exported from USB temperature loggers: text in, domain values out (no paths, no I/O).

Each module reads one vendor's format and may import only the standard library, msgspec and
``coldchain.domain``; malformed input raises a ``LoggerFileError`` carrying the 1-based line number.
"""
