"""Argument types for the command lines (aecore and aecore inspect / bench): each parses one
value, or raises argparse.ArgumentTypeError with what was expected and what was given."""

import argparse
import math


def _number(text, convert, accept, expected):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text):
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def nonnegative_int(text):
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text):
    return _number(text, float, lambda v: 0 < v < math.inf, "a positive number")


def nonnegative_float(text):
    return _number(text, float, lambda v: 0 <= v < math.inf, "a number >= 0")


def fraction(text):
    return _number(text, float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


def int_list(text):
    """'32,32,16' (or '32x32x16') -> [32, 32, 16]; every entry a positive integer."""
    expected = "a comma-separated list of positive integers like 32,32,16"
    try:
        values = [int(p) for p in text.replace("x", ",").split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return values


def int_list_or_empty(text):
    """Like int_list; '' or 'none' give an empty list (e.g. no hidden layers)."""
    if text.strip().lower() in ("", "none"):
        return []
    return int_list(text)


def shape(text):
    """'1,28,28' or '1x28x28' -> (1, 28, 28)."""
    try:
        return tuple(int_list(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1,28,28, got {text!r}") from None
