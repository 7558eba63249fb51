"""Writing results: output folders with a lock, atomic CSV and JSON files, two CSV dialects.

Every file is written to a temporary name in its folder and renamed into place only when all files of a
run are ready, so an interrupted or failed run leaves no half-written file (and what a killed one left under a
temporary name is removed by the next command into the folder). A folder in use holds a lock file naming the
process; a second run into it is refused.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import socket
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from typing import Iterable, Iterator

try:
    import fcntl
except ImportError:  # Windows: the lock file's process is checked instead (see _lock_by_name)
    fcntl = None
import numpy as np
import pandas as pd

from sim.errors import OutputError, UserError

LOCK_NAME = ".lte.lock"
DIALECTS = ("plain", "nb")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What lte itself writes into an output folder: the tables and manifest of lte run, lte sweep and lte sensitivity,
# a sweep's sweep.json and the run files in its runs/, and lte report's page and the charts in its charts/
# (sim/report.py). lte run --overwrite removes these, with their unfinished temporary files, and nothing else.
RESULT_FILES = ("monthly.csv", "yearly.csv", "summary.csv", "budget.csv", "loans.csv", "events.csv", "manifest.json",
                "points.csv", "runs.csv", "comparison.csv", "sweep.json", "sensitivity.csv", "report.html")
RESULT_FOLDERS = {
    "runs": ("*.yearly.csv", "*.loans.csv"),
    "charts": ("new_owners.png", "frame.png", "waiting.png", "startlan.png", "portfolio.png", "municipal_money.png",
               "sweep_new_owners.png", "sweep_startlan_nok.png", "sweep_frame_gave_up.png",
               "sweep_frame_expired_nok.png", "sweep_loss_nok.png"),
}


# ---------------------------------------------------------------------------------------------- folders
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(lock: Path) -> tuple[str, int] | None:
    try:
        host, pid = lock.read_text().split()[:2]
        return host, int(pid)
    except (OSError, ValueError):
        return None


@contextmanager
def locked_dir(path: str | Path, overwrite: bool = False, allow_existing: bool = False) -> Iterator[Path]:
    """Hold an output folder for one run.

    Refuses a folder that another live process holds, and (unless ``overwrite`` or ``allow_existing``)
    a folder that already has files. ``allow_existing`` is for resumable work such as sweeps.
    A folder this call created (with its parents) is removed again if the run fails before writing anything.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: output path is a file, not a folder")
    created = []  # the folders this call creates, deepest first
    for folder in (path, *path.parents):
        if folder.exists():
            break
        created.append(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)  # the parents it did create
        raise OutputError(f"{path}: cannot create the output folder ({exc.strerror})") from None
    lock = path / LOCK_NAME
    try:
        fd = _lock(lock, path) if fcntl is not None else _lock_by_name(lock, path)
    except OutputError:
        _remove_empty(created)
        raise
    try:
        _remove_unfinished(path)
        if not (overwrite or allow_existing) and any(p.name != LOCK_NAME for p in path.iterdir()):
            raise OutputError(f"{path}: output folder is not empty; choose another --out or pass --overwrite")
        yield path
    finally:
        try:  # (removed before the file is closed and its lock let go: see _lock), if it is still this run's
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                lock.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)
        _remove_empty(created)


def _lock(lock: Path, folder: Path) -> int:
    """Hold the folder's lock file: an exclusive lock on the open file, which the system lets go of when the
    process ends, however it ends, so a killed run leaves nothing that blocks the next. Returns the open file."""
    while True:
        try:
            fd, made = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644), True
        except FileExistsError:
            fd, made = None, False
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write to the output folder ({exc.strerror})") from None
        try:
            if fd is None:
                fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:  # its holder removed it just now: try again
            continue
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write to the output folder ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_lock(lock)
            who = f" (process {holder[1]} on {holder[0]})" if holder else ""
            raise OutputError(f"{folder}: output folder is in use by another run{who}; wait for it to finish") \
                from None
        except OSError as exc:  # a file system without file locks (a network disk without its lock service)
            os.close(fd)
            if made:
                lock.unlink(missing_ok=True)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return _lock_by_name(lock, folder)
            raise OutputError(f"{folder}: cannot lock the output folder ({exc.strerror})") from None
        try:
            ours = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            ours = False
        if ours:
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            except OSError as exc:  # a full disk: the lock holds without the note of who holds it
                if exc.errno != errno.ENOSPC:
                    os.close(fd)
                    raise OutputError(f"{folder}: cannot write to the output folder ({exc.strerror})") from None
            return fd
        # the run that held it finished and removed the file while this one waited for its lock: try again
        os.close(fd)


def _lock_by_name(lock: Path, folder: Path) -> int:
    """Where the system has no file locks (Windows): the lock file is created only if absent, and names its
    process; one whose process is gone is taken over."""
    holder = _read_lock(lock) if lock.exists() else None
    if holder is not None:
        host, pid = holder
        if host != socket.gethostname() or _pid_alive(pid):
            raise OutputError(f"{folder}: output folder is in use by another run (process {pid} on {host}); "
                              f"wait for it to finish, or remove {lock} if that run is gone")
        lock.unlink(missing_ok=True)  # left by a run that died
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise OutputError(f"{folder}: output folder is in use by another run ({lock} exists: if no lte is running "
                          "there, remove it)") from None
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write to the output folder ({exc.strerror})") from None
    os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
    return fd


def _remove_unfinished(folder: Path) -> None:
    """Remove the files a killed lte command left under their temporary names (``.yearly.csv.tmp-PID``) in
    ``folder`` and its result folders: a killed process cannot clean up after itself. Only files of lte's own
    temporary names whose process is gone, and only in a folder of lte's results (with a manifest.json or
    sweep.json) or one that holds nothing else (a new folder whose first run was killed): never a file of the
    user's, nor one that a live process is still writing."""
    places = [(folder, RESULT_FILES)] + [(folder / name, patterns) for name, patterns in RESULT_FOLDERS.items()]
    stale = []
    for place, patterns in places:
        if not place.is_dir() or place.is_symlink():
            continue
        stale += [path for path in place.glob(".*.tmp-*") if _is_unfinished(path.name, patterns) and path.is_file()]
    if not stale:
        return
    if not _is_output_folder(folder):
        others = [p for p in folder.iterdir() if p.name != LOCK_NAME and p not in stale
                  and not (p.name in RESULT_FOLDERS and p.is_dir() and all(q in stale for q in p.iterdir()))]
        if others:
            return
    for path in stale:
        path.unlink(missing_ok=True)
    for name in RESULT_FOLDERS:  # a result folder that held only those
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            _remove_empty([folder / name])


def remove_empty_folder(folder: Path) -> None:
    """Remove ``folder`` if it is empty (a result folder made for files that were not written)."""
    _remove_empty([folder])


def _remove_empty(folders: list[Path]) -> None:
    """Remove those of the folders (a folder, then its parents) that are empty: rmdir never removes any other."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or never created (a failed mkdir)
            continue


def _is_result_name(name: str, patterns: Iterable[str]) -> bool:
    """A result's name, or the temporary name it had while a command now gone wrote it (see :func:`_is_unfinished`)."""
    return any(fnmatch(name, pattern) for pattern in patterns) or _is_unfinished(name, patterns)


def _is_unfinished(name: str, patterns: Iterable[str]) -> bool:
    """The temporary name of a result (:class:`AtomicWriter`: ``.yearly.csv.tmp-PID``) whose process is gone. (One
    whose process lives may still be being written, and a name without a process id is not lte's.)"""
    pid = name.rpartition(".tmp-")[2]
    return (pid.isascii() and pid.isdigit() and 0 < int(pid) < 2 ** 31  # (else not a process id: not lte's)
            and any(fnmatch(name, f".{pattern}.tmp-*") for pattern in patterns) and not _pid_alive(int(pid)))


def remove_results(folder: Path, keep: Iterable[str] = ()) -> None:
    """Remove from ``folder`` what lte wrote there (:data:`RESULT_FILES`, the files of :data:`RESULT_FOLDERS`,
    and their temporary names), except the names in ``keep``; a result folder left empty is removed too.
    Files and folders with other names, and the lock, are left alone, and so is everything in a folder lte did
    not write results to (one without a manifest.json or sweep.json), whatever the names."""
    keep = set(keep)
    if not _is_output_folder(folder):  # a folder of the user's with names like lte's: nothing in it is lte's
        return
    try:
        for path in sorted(folder.iterdir()):
            if path.name in keep:
                continue
            if path.name in RESULT_FOLDERS and path.is_dir() and not path.is_symlink():
                for item in sorted(path.iterdir()):
                    if not item.is_dir() and _is_result_name(item.name, RESULT_FOLDERS[path.name]):
                        item.unlink()
                if not any(path.iterdir()):
                    path.rmdir()
            elif not path.is_dir() and _is_result_name(path.name, RESULT_FILES):
                path.unlink()
    except OSError as exc:
        raise OutputError(f"{folder}: cannot remove the results of an earlier run ({exc.strerror}: "
                          f"{exc.filename})") from None


def is_result_file(path: str | Path) -> bool:
    """Whether ``path`` has the name of one of lte's own results in an output folder of lte (a folder with a
    manifest.json or sweep.json, or its runs/ or charts/), whether or not that file exists yet."""
    path = Path(path)
    folder = path.parent
    if folder.name in RESULT_FOLDERS and _is_output_folder(folder.parent):
        return _is_result_name(path.name, RESULT_FOLDERS[folder.name])
    return _is_output_folder(folder) and _is_result_name(path.name, RESULT_FILES)


def _is_output_folder(folder: Path) -> bool:
    return (folder / "manifest.json").is_file() or (folder / "sweep.json").is_file()


def write_table_file(path: str | Path, df: pd.DataFrame, dialect: str = "plain", overwrite: bool = False) -> Path:
    """Write one table to a file the user named (``lte compare --out``): whole, or not at all.

    Refuses a folder that does not exist, an existing file unless ``overwrite``, and, even with ``overwrite``,
    one of lte's own results in a run's or sweep's folder (:func:`is_result_file`) and anything that is not a
    plain file (a device, a folder, a link)."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"{path}: --out: {folder} {what}")
    if is_result_file(path):
        raise OutputError(f"{path}: --out: {folder} holds the results of a run or sweep and {path.name} is one of "
                          "lte's own files there; choose another file")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: --out: the file exists; choose another file or pass --overwrite to replace it")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # written under a temporary name and renamed into place, the table would replace a folder's entry, a
        # device (/dev/full) or a link itself, rather than write into it
        raise OutputError(f"{path}: --out: not a plain file; name a new file or an existing ordinary one")
    try:
        with locked_dir(folder, allow_existing=True), AtomicWriter(folder) as w:  # (not beside a run writing there)
            w.table(path.name, df, dialect)
    except OSError as exc:
        raise OutputError(f"{path}: --out: cannot write the file ({exc.strerror})") from None
    return path


class AtomicWriter:
    """Collects files written to temporary names; :meth:`commit` renames them all into place.

    With ``clear_results``, :meth:`commit` first removes the results an earlier lte command left in the folder
    (:func:`remove_results`), so that the folder holds only the new ones; a run that fails before it commits
    leaves the earlier results as they were.
    """

    def __init__(self, folder: Path, clear_results: bool = False):
        self.folder = Path(folder)
        self.clear_results = clear_results
        self._pending: list[tuple[Path, Path]] = []

    def _tmp(self, name: str) -> tuple[Path, Path]:
        """The temporary and final paths of ``name`` (which may lie in a subfolder: ``charts/frame.png``)."""
        final = self.folder / name
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        self._pending.append((tmp, final))
        return tmp, final

    def table(self, name: str, df: pd.DataFrame, dialect: str = "plain") -> None:
        self._write(name, lambda tmp: write_csv(df, tmp, dialect))

    def json(self, name: str, data: dict) -> None:
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
        self._write(name, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def bytes(self, name: str, data: bytes) -> None:
        self._write(name, lambda tmp: tmp.write_bytes(data))

    def _write(self, name: str, write) -> None:
        tmp, final = self._tmp(name)
        try:
            write(tmp)
        except OSError as exc:  # a full disk says nothing of where: the message names the file
            raise OutputError(f"{final}: cannot write the file ({exc.strerror or exc})") from None

    def commit(self) -> list[Path]:
        # whatever would stop a rename (a folder where a result goes) stops them all, before the first: never a
        # folder of new results beside old ones
        for _, final in self._pending:
            if final.is_dir() and not final.is_symlink():
                self.discard()
                raise OutputError(f"{final}: a folder is where lte writes its {final.name}; move it away and run "
                                  "again (nothing was written)")
        if self.clear_results:
            try:
                remove_results(self.folder, keep={p.name for pair in self._pending for p in pair})
            except OutputError:
                self.discard()
                raise
        done = []
        for tmp, final in self._pending:
            os.replace(tmp, final)
            done.append(final)
        self._pending = []
        return done

    def discard(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending = []

    def __enter__(self) -> "AtomicWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


# ---------------------------------------------------------------------------------------------- CSV
def is_nok(column: str) -> bool:
    """A column of NOK amounts, by the naming rule of every table (``*_nok``, ``*_nok_*``, ``nok*``)."""
    return column.endswith("_nok") or "_nok_" in column or column.startswith("nok")


def tidy_numbers(df: pd.DataFrame) -> pd.DataFrame:
    """Whole numbers as integers (a column whose values are all whole, empty cells aside), NOK rounded to whole
    kroner, other decimals to 6 places.

    Rounding makes the files identical across machines whose last floating-point bit may differ. All float
    columns are rounded and checked at once (column by column, pandas' per-call overhead made this a quarter of
    the time of a short sweep run).
    """
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    if not floats:
        return df.copy()
    values = df[floats].to_numpy(dtype=np.float64, na_value=np.nan)
    nok = np.array([is_nok(c) for c in floats])
    rounded = np.where(nok, np.round(values, 0), np.round(values, 6))
    empty = np.isnan(rounded)
    filled = np.where(empty, 0.0, rounded)
    with np.errstate(invalid="ignore"):
        whole = (~empty).any(axis=0) & (np.mod(filled, 1) == 0).all(axis=0) & (np.abs(filled) < 2**53).all(axis=0)
    tidy = {}
    for k, c in enumerate(floats):
        if not whole[k]:
            tidy[c] = np.where(rounded[:, k] != 0, rounded[:, k], 0.0)  # (no "-0")
        elif empty[:, k].any():
            tidy[c] = pd.arrays.IntegerArray(filled[:, k].astype("int64"), empty[:, k])  # empty cells stay empty
        else:
            tidy[c] = filled[:, k].astype("int64")
    return pd.DataFrame({c: tidy[c] if c in tidy else df[c] for c in df.columns}, index=df.index)


def guard_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Make text cells inert in a spreadsheet: a cell starting with = + - @ gets a leading apostrophe."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return out


def unguard_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`guard_formulas`: text that the guard gave a leading apostrophe gets it back off."""
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].map(lambda v: v[1:] if isinstance(v, str) and v[:1] == "'" and v[1:2] and
                                  v[1:2] in _FORMULA_START else v)
    return df


def write_csv(df: pd.DataFrame, path: str | Path, dialect: str = "plain") -> None:
    """Write a table. ``plain``: comma, decimal point, UTF-8. ``nb``: semicolon, decimal comma, UTF-8
    with BOM, for Excel with Norwegian settings. Both guard text cells against formulas."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown CSV dialect {dialect!r}")
    df = guard_formulas(tidy_numbers(df))
    if dialect == "nb":
        df.to_csv(path, sep=";", decimal=",", index=False, encoding="utf-8-sig", lineterminator="\n")
    else:
        df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def read_any_csv(path: str | Path, **kwargs) -> tuple[pd.DataFrame, str]:
    """Read a CSV file however it was saved, and say which dialect it is in (:func:`_dialect`): ``nb``
    (semicolons and decimal commas, as Excel with Norwegian settings saves a table, with or without a byte-order
    mark) or ``plain``; UTF-8 with or without a byte-order mark, or Windows-1252 (Excel's "CSV (semikolondelt)").
    ``kwargs`` go to ``pandas.read_csv``. A file that is not a table raises a ValueError (``pandas.errors.ParserError``
    or ``UnicodeDecodeError``), for the caller to name the file."""
    with open(path, "rb") as fh:
        head = [fh.readline(65536) for _ in range(2)]
    # (a line ends at a carriage return too, as pandas reads it: a file saved with old Mac line endings)
    lines = [part for line in head for part in line.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
             .splitlines() if part.strip()][:2]
    try:
        dialect = _dialect(lines)
    except csv.Error as exc:  # not text at all (a picture, a program): a ValueError, as pandas would raise
        raise pd.errors.ParserError(f"not a table ({exc})") from None
    options = {"sep": ";", "decimal": ","} if dialect == "nb" else {}
    try:
        return pd.read_csv(path, encoding="utf-8-sig", **options, **kwargs), dialect
    except UnicodeDecodeError:
        return pd.read_csv(path, encoding="cp1252", **options, **kwargs), dialect


def _dialect(lines: list[str]) -> str:
    """``nb`` or ``plain`` from a table's header and first row: semicolons if they split the header into more
    than one column and the row into as many (a name may hold the other separator, quoted or not, and a row of
    the nb dialect holds decimal commas), else commas if they do; failing both, the one that splits the header
    into more columns."""
    widths = {sep: [len(row) for row in csv.reader(lines, delimiter=sep)] for sep in ";,"}
    for sep, dialect in ((";", "nb"), (",", "plain")):
        if widths[sep][:1] > [1] and len(set(widths[sep])) == 1:
            return dialect
    return "nb" if widths[";"][:1] > widths[","][:1] else "plain"


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_csv` in either dialect (or saved again by Excel: see
    :func:`read_any_csv`), its text as it was before the formula guard (a name such as ``-late`` comes back
    without the apostrophe the file gives it)."""
    return unguard_formulas(read_any_csv(path)[0])


# the columns that key a result table's rows: whole numbers in every row
KEY_COLUMNS = ("point", "replication", "year")


def _names(columns: list[str], joiner: str) -> str:
    """``a``, ``a or b``, ``a, b or c``; more than three: the first three and how many more."""
    if len(columns) > 3:
        return f"{', '.join(columns[:3])} {joiner} {len(columns) - 3} more"
    return columns[0] if len(columns) == 1 else f"{', '.join(columns[:-1])} {joiner} {columns[-1]}"


def read_result_table(path: Path, columns: Iterable[str], values: Iterable[str] = (),
                      keys: dict | None = None) -> pd.DataFrame:
    """A table of a run's or sweep's folder, with the columns the caller cannot do without (``columns``, the keys
    of its rows, then ``values``); otherwise a UserError naming the file (one written over by hand or by another
    program, or cut short).

    Refused as damaged or incomplete: a file that is not text, is empty, does not end with a line break (cut off
    while written or copied) or has a row with another number of fields than its header; a table whose
    ``point``, ``replication`` or ``year`` is not a whole number in every row; and, if ``keys`` gives the values
    each of its key columns must take (None: the values in the table; a year's, every year from its first to its
    last), a table without exactly one row for each combination of them."""
    path = Path(path)
    damaged = f"{path}: damaged or incomplete"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise UserError(f"{path}: not a table written by lte (it holds binary data, not text); run it again")
    if not data.strip():
        raise UserError(f"{damaged} (the file is empty); run it again")
    if not data.endswith((b"\n", b"\r")):  # (lte and Excel end every line, the last too; old Macs with \r)
        raise UserError(f"{damaged} (its last line is cut short: the file does not end with a line break); "
                        "run it again")

    def unreadable(exc: csv.Error) -> UserError:  # (its message's advice is for programmers)
        return UserError(f"{path}: not a readable table ({str(exc).split(' - ')[0]}); run it again")

    try:
        table, dialect = read_any_csv(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot be read as a table written by lte ({exc}); run it again") from None
    except csv.Error as exc:
        raise unreadable(exc) from None
    table = unguard_formulas(table)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(f"{path}: not a table written by lte (no {' or '.join(missing)} column); run it again")
    missing = [c for c in values if c not in table.columns]
    if missing:
        raise UserError(f"{path}: not a table written by lte (it lacks the column{'s' if len(missing) > 1 else ''} "
                        f"{_names(missing, 'and')}); run it again")
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=";" if dialect == "nb" else ",")
    width = None
    try:
        for row in reader:
            if row and width is None:
                width = len(row)
            elif row and len(row) != width:
                raise UserError(f"{damaged} (line {reader.line_num} has {len(row)} fields, its header {width}"
                                + (": cut short" if len(row) < width else "") + "); run it again")
    except csv.Error as exc:
        raise unreadable(exc) from None
    if table.empty:
        raise UserError(f"{damaged} (it has no rows); run it again")
    for c in KEY_COLUMNS:
        if c in table.columns and not pd.api.types.is_integer_dtype(table[c]):
            raise UserError(f"{damaged} ({c}: not a whole number in every row); run it again")
    if keys:
        check_rows(path, table, keys)
    return table


def check_rows(path: Path, table: pd.DataFrame, keys: dict) -> None:
    """A table read by :func:`read_result_table` has one row for each combination of its key columns' values
    (``keys``: column -> its values, or None for those in the table: a year's, every year from its first to its
    last); otherwise a UserError naming the file as damaged or incomplete."""
    damaged = f"{path}: damaged or incomplete"
    cols = list(keys)
    expected = []
    for c in cols:
        if keys[c] is not None:
            expected.append(sorted(keys[c]))
        elif c == "year":
            expected.append(list(range(int(table[c].min()), int(table[c].max()) + 1)))
        else:
            expected.append(sorted(set(table[c])))
    have = pd.MultiIndex.from_frame(table[cols])
    want = pd.MultiIndex.from_product(expected, names=cols)

    def name(combination) -> str:
        return ", ".join(f"{c} {v}" for c, v in zip(cols, combination if isinstance(combination, tuple)
                                                     else (combination,)))

    every = " × ".join(cols)
    if have.has_duplicates:
        raise UserError(f"{damaged} (more than one row for {name(have[have.duplicated()][0])}); run it again")
    lacking = want.difference(have)
    if len(lacking):
        raise UserError(f"{damaged} (no row for {name(lacking[0])}"
                        + (f" and {len(lacking) - 1} more" if len(lacking) > 1 else "")
                        + f"; it needs one for every {every}); run it again")
    extra = have.difference(want)
    if len(extra):
        raise UserError(f"{damaged} (a row for {name(extra[0])}, which its folder's manifest.json does not "
                        "have); run it again")


def result_keys(manifest: dict, sweep: bool) -> dict:
    """The values the key columns of a yearly table must take, as far as a folder's manifest says: its points (a
    sweep), its replications and the years of its period; None for what it does not say."""
    def count(value):
        return range(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    scenario = manifest.get("scenario")
    period = scenario.get("period") if isinstance(scenario, dict) else manifest.get("period")
    years = None
    if isinstance(period, dict):
        try:
            years = range(int(str(period["start"])[:4]), int(str(period["end"])[:4]) + 1)
        except (KeyError, ValueError):
            years = None
    keys = {"point": count(manifest.get("points"))} if sweep else {}
    keys.update(replication=count(manifest.get("replications")), year=years)
    return keys


# ---------------------------------------------------------------------------------------------- a run's files
def run_tables(result) -> dict[str, pd.DataFrame]:
    """The tables of a finished run (a :class:`sim.runner.RunResult`), by file name."""
    from sim.runner import add_dates, summary, yearly
    from sim.timeline import YearMonth

    start = YearMonth.parse(result.scenario.period.start)
    monthly = result.monthly
    year_table = yearly(monthly)
    from sim.budget import budget_by_replication, budget_summary

    tables = {
        "monthly.csv": monthly,
        "yearly.csv": year_table,
        "summary.csv": summary(year_table),
        "budget.csv": budget_summary(budget_by_replication(year_table, result.loans, result.scenario)),
        "loans.csv": add_dates(result.loans, start, ["approved_t", "t", "default_t", "settled_t"]),
    }
    events = result.events
    if events is not None:
        tables["events.csv"] = add_dates(events, start, ["t"])
    return tables


def library_versions() -> dict[str, str]:
    """The versions of Python and of the libraries a run's numbers depend on, for a manifest."""
    import platform

    import scipy
    import simpy

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "simpy": simpy.__version__, "pandas": pd.__version__}


def manifest(result, loaded, command: list[str], started: str, finished: str, extra: dict | None = None) -> dict:
    """What produced a run: the resolved scenario, a hash of its files, seed, versions, command, times."""
    from sim import __version__

    data = {
        "scenario_name": result.scenario.name,
        "scenario": result.scenario.model_dump(mode="json"),
        "scenario_files": [str(f) for f in loaded.files],
        "scenario_files_sha256": loaded.files_hash(),
        "seed": result.seed,
        "replications": len(result.replications),
        "package_version": __version__,
        "versions": library_versions(),
        "command": command,
        "started": started,
        "finished": finished,
    }
    if extra:
        data.update(extra)
    return data
