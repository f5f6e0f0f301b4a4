"""Checkers for the book's exercises, one module per chapter (``sseq.checks.ch01``, ...).

Each checker builds hidden cases and hands them, with the book's reference, to
:mod:`sseq.exercises`, which prints a line per case and a verdict.
"""
