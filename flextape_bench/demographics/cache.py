"""The SQLite cache of Wikidata claims: (qid, property, value_qid, rank) rows plus one row per fetched qid (status,
redirect, fetched-at), so an entity without claims is never fetched again; every write is one transaction.

Like every other cache (flextape_bench.checksums), the file is checked when opened (`PRAGMA quick_check`): one that
is not an intact SQLite database is reported in one line on stderr, moved aside (`<name>.damaged.<random>`) and
replaced by an empty cache."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flextape_bench.checksums import DamagedFile, warn_damaged
from flextape_bench.demographics.wikidata import PROPERTIES, Entity, truthy
from flextape_bench.errors import UserError
from flextape_bench.paths import cache_dir

CACHE_FILE = "demographics.sqlite"
_SQL_CHUNK = 500  # ids per `IN (...)` query (SQLite allows 999 parameters on old builds)


def _damage(db: sqlite3.Connection) -> str | None:
    """Why the database is not intact (not SQLite, or corrupt), or None when `PRAGMA quick_check` passes."""
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:  # its subclasses: locked, busy, I/O errors (not damage)
            raise
        return f"not an intact SQLite database ({exc})"
    if rows == [("ok",)]:
        return None
    first = rows[0][0].splitlines()[-1]  # without its "*** in database main ***" line
    return f"a damaged SQLite database (quick_check: {first}{f' and {len(rows) - 1} more' if len(rows) > 1 else ''})"


def default_cache_path(cache_root: Path | None = None) -> Path:
    """`<cache>/demographics.sqlite`, `<cache>` as in flextape_bench.paths.cache_dir()."""
    return (cache_root if cache_root is not None else cache_dir()) / CACHE_FILE


@dataclass(frozen=True)
class CachedEntity:
    """A fetched entity as the cache holds it: claims are truthy values per property."""

    qid: str
    status: str
    redirect: str | None
    fetched_at: float
    claims: Mapping[str, tuple[str, ...]]

    def values(self, prop: str) -> tuple[str, ...]:
        return self.claims.get(prop, ())


class DemographicsCache:
    """SQLite cache of Wikidata item claims. Tables: `claims(qid, property, value_qid, rank)` and
    `fetched(qid, status, redirect, fetched_at, properties)`; a qid is cached when its `fetched` row lists every
    property asked for. Writes happen in single transactions (a crash leaves whole batches or nothing)."""

    SCHEMA_VERSION = 1

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise UserError(
                f"cannot open the demographics cache {self.path} ({exc}); delete it or pass --cache with another path"
            ) from exc
        except OSError as exc:
            raise UserError(
                f"cannot create the demographics cache {self.path} ({exc}); pass --cache with a writable path"
            ) from exc
        if version not in (0, self.SCHEMA_VERSION):
            self._db.close()
            raise UserError(
                f"the demographics cache {self.path} has schema version {version}, this version of "
                f"flextape-bench reads {self.SCHEMA_VERSION}; delete the file and fetch again"
            )
        if version == 0:
            with self._transaction():
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS claims (qid TEXT NOT NULL, property TEXT NOT NULL, "
                    "value_qid TEXT NOT NULL, rank TEXT NOT NULL, "
                    "PRIMARY KEY (qid, property, value_qid))"
                )
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS fetched (qid TEXT PRIMARY KEY, status TEXT NOT NULL, "
                    "redirect TEXT, fetched_at REAL NOT NULL, properties TEXT NOT NULL)"
                )
                self._db.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        """A connection to the checked cache file; a damaged one is reported, moved aside and started afresh."""
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            problem = _damage(db)
        except BaseException:
            db.close()
            raise
        if problem is None:
            return db
        db.close()  # opening it played back any hot journal: the file alone holds the damage
        aside = self.path.with_name(f"{self.path.name}.damaged.{uuid.uuid4().hex[:8]}")
        self.path.rename(aside)
        warn_damaged(
            DamagedFile(self.path, problem),
            f"moved to {aside.name}, starting an empty cache (fetch the "
            "claims again with `flextape-bench demographics`)",
        )
        return sqlite3.connect(self.path, timeout=60, isolation_level=None)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DemographicsCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
        for start in range(0, len(items), _SQL_CHUNK):
            yield items[start : start + _SQL_CHUNK]

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, kind: object, *rest: object) -> None:
            self.db.execute("ROLLBACK" if kind is not None else "COMMIT")

    def _transaction(self) -> _Tx:
        return self._Tx(self._db)

    def store(
        self, entities: Iterable[Entity], properties: Sequence[str] = PROPERTIES, fetched_at: float | None = None
    ) -> int:
        """Replace the cached claims of `entities` and mark them fetched for `properties`, in one transaction."""
        entities = list(entities)
        when = time.time() if fetched_at is None else fetched_at
        listed = ",".join(sorted(set(properties)))
        with self._transaction():
            for entity in entities:
                self._db.execute("DELETE FROM claims WHERE qid = ?", (entity.qid,))
                self._db.executemany(
                    "INSERT OR REPLACE INTO claims (qid, property, value_qid, rank) VALUES (?, ?, ?, ?)",
                    [
                        (entity.qid, prop, value, rank)
                        for prop, values in entity.claims.items()
                        if prop in properties
                        for value, rank in values
                    ],
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO fetched (qid, status, redirect, fetched_at, properties) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (entity.qid, entity.status, entity.redirect, when, listed),
                )
        return len(entities)

    def cached(self, qids: Iterable[str], properties: Sequence[str] = PROPERTIES) -> set[str]:
        """The `qids` fetched with every one of `properties`."""
        need = set(properties)
        ids = list(dict.fromkeys(qids))
        out: set[str] = set()
        for chunk in self._chunks(ids):
            rows = self._db.execute(
                f"SELECT qid, properties FROM fetched WHERE qid IN ({','.join('?' * len(chunk))})", list(chunk)
            ).fetchall()
            out.update(qid for qid, listed in rows if need <= set(listed.split(",")))
        return out

    def lookup(self, qids: Iterable[str]) -> dict[str, CachedEntity]:
        """Cached entities of `qids` (absent ones left out), claims reduced to truthy values."""
        ids = list(dict.fromkeys(q for q in qids if q))
        heads: dict[str, tuple[str, str | None, float]] = {}
        raw: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for chunk in self._chunks(ids):
            marks = ",".join("?" * len(chunk))
            for qid, status, redirect, when in self._db.execute(
                f"SELECT qid, status, redirect, fetched_at FROM fetched WHERE qid IN ({marks})", list(chunk)
            ):
                heads[qid] = (status, redirect, when)
            for qid, prop, value, rank in self._db.execute(
                f"SELECT qid, property, value_qid, rank FROM claims WHERE qid IN ({marks}) ORDER BY rowid", list(chunk)
            ):
                raw.setdefault(qid, {}).setdefault(prop, []).append((value, rank))
        return {
            qid: CachedEntity(qid, status, redirect, when, {p: tuple(truthy(v)) for p, v in raw.get(qid, {}).items()})
            for qid, (status, redirect, when) in heads.items()
        }

    def get(self, qid: str) -> CachedEntity | None:
        return self.lookup([qid]).get(qid)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM fetched").fetchone()[0]
