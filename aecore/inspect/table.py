"""Plain-text tables and human-readable numbers, shared by summary, stats and the profiler."""


def human(value, unit="", base=1000.0):
    """12345678 -> '12.3M' (base 1000) or, with base 1024, '11.8 Mi'."""
    if value is None:
        return "-"
    prefixes = ["", "K", "M", "G", "T", "P"]
    magnitude = float(value)
    index = 0
    while abs(magnitude) >= base and index < len(prefixes) - 1:
        magnitude /= base
        index += 1
    suffix = prefixes[index] + ("i" if base == 1024 and index else "")
    text = f"{magnitude:.0f}" if index == 0 else f"{magnitude:.1f}"
    return f"{text}{' ' if unit and base == 1024 else ''}{suffix}{unit}"


def human_bytes(value):
    if value is None:
        return "-"
    return human(value, "B", 1024.0)


def fmt(value, digits=3):
    """Floats with `digits` significant digits, ints with thousands separators, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value)


def format_table(headers, rows, align=None, title=None):
    """Rows of cells (already strings or formattable) as an aligned text table.

    align: a string of 'l'/'r' per column (default: first column left, the rest right).
    """
    cells = [[h for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if align is None:
        align = "l" + "r" * (len(headers) - 1)

    def line(row):
        parts = [cell.ljust(width) if a == "l" else cell.rjust(width)
                 for cell, width, a in zip(row, widths, align)]
        return "  ".join(parts).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)
