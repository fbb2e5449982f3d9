"""The child process that reads a CCAM workbook for engine.services.ccam_ameli (CH-7.1), under resource limits.

python-calamine builds a dense grid when it loads a sheet: a tiny .xlsx with a cell at A1 and another at XFD1048576
asks for hundreds of gigabytes, and a failed allocation aborts the process (SIGABRT, which Python cannot catch). So
the workbook is read here, in a child process, with its address space and CPU time limited BEFORE calamine is
imported: such a file kills the child, never the web worker or the command. Run as
``python -P -m engine.services.ccam_sheet_reader`` (-P: never a module of the current directory) with the workbook's
bytes on stdin; prints on stdout, as JSON, ``{"sheets": [[name, rows], ...]}`` where a cell is a str, a float or null;
or ``{"error": "...", "kind": TOO_LARGE or UNREADABLE}`` with exit status 2 when a sheet is beyond MAX_ROWS x
MAX_COLUMNS, the answer beyond MAX_OUTPUT_BYTES (what the process reading it holds stays bounded) or the file cannot
be read."""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

MEMORY_LIMIT = 1024**3  # bytes of address space
CPU_SECONDS = 45
TOO_LARGE, UNREADABLE = "too_large", "unreadable"
MAX_ROWS, MAX_COLUMNS = 60_000, 40  # the CNAM's CCAM sheet is some 15,000 to 20,000 rows of about 15 columns
MAX_OUTPUT_BYTES = 24 * 2**20  # the JSON answer; the CCAM's, estimated at 5 to 10 MB


class SheetTooLarge(ValueError):
    """A sheet beyond MAX_ROWS x MAX_COLUMNS (French message)."""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    # stdout and stderr are files of the parent's: never more than it reads (EFBIG beyond: Python ignores SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_OUTPUT_BYTES + 2**16, MAX_OUTPUT_BYTES + 2**16))


def _cell(value: Any) -> str | float | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return float(value)
    return str(value)  # dates, times, durations


def read(content: bytes) -> list[tuple[str, list[list[str | float | None]]]]:
    """The rows of each sheet of the workbook `content`; SheetTooLarge (French) beyond the caps."""
    import io

    import python_calamine  # imported only once the limits are set

    workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(content))
    sheets = []
    for name in workbook.sheet_names:
        sheet = workbook.get_sheet_by_name(name)
        end = sheet.end  # (row, column) of the last cell, from 0; the rows emitted start at A1
        height, width = (end[0] + 1, end[1] + 1) if end is not None else (0, 0)
        if height > MAX_ROWS or width > MAX_COLUMNS:
            raise SheetTooLarge(f"la feuille « {name[:40]} » a {height} lignes et {width} colonnes ; au plus "
                             f"{MAX_ROWS} lignes et {MAX_COLUMNS} colonnes sont lues")
        sheets.append((name, [[_cell(value) for value in row] for row in sheet.to_python(skip_empty_area=False)]))
    return sheets


def encode(sheets: list[tuple[str, list[list[str | float | None]]]], limit: int = MAX_OUTPUT_BYTES) -> bytes:
    """The JSON answer for `sheets`; SheetTooLarge (French) when it is beyond `limit` bytes."""
    answer = json.dumps({"sheets": sheets}, ensure_ascii=False, separators=(",", ":")).encode()
    if len(answer) > limit:
        raise SheetTooLarge(f"son contenu lu fait {len(answer) // 2**20} Mo ; au plus {limit // 2**20} Mo sont lus")
    return answer


def main() -> int:
    _limit()
    content = sys.stdin.buffer.read()
    try:
        answer = encode(read(content))
    except SheetTooLarge as error:
        print(json.dumps({"error": str(error), "kind": TOO_LARGE}, ensure_ascii=False))
        return 2
    except MemoryError:
        print(json.dumps({"error": f"plus de {MEMORY_LIMIT // 2**20} Mo de mémoire pour le lire", "kind": TOO_LARGE},
                         ensure_ascii=False))
        return 2
    except Exception as error:  # noqa: BLE001  (calamine's errors: the file is not a workbook it can read)
        print(json.dumps({"error": str(error)[:120], "kind": UNREADABLE}, ensure_ascii=False))
        return 2
    sys.stdout.buffer.write(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
