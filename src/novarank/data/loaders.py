"""Readers for the standard interaction formats, all producing a `Dataset`.

Supported: MovieLens 100K (u.data, u.item), MovieLens latest/25M (ratings.csv,
movies.csv), RecBole atomic files (<name>.inter, <name>.item) and the generic format
(interactions and items as CSV or Parquet, see docs/data-format.md).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

from novarank.data.dataset import NO_TIME, Dataset
from novarank.data.events import Event
from novarank.errors import DataError

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
_YEAR = re.compile(r"\((\d{4})\)\s*$")


# ---- validation helpers ---------------------------------------------------------------
def _require(df: pd.DataFrame, cols: list[str], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; found {list(df.columns)}",
                        path=str(path), field=missing[0])


def _numeric(df: pd.DataFrame, col: str, path: Path, first_line: int,
             *, integer: bool = False) -> np.ndarray:
    """Column as numbers; the first bad row is reported by file, line and field."""
    raw = df[col]
    vals = pd.to_numeric(raw, errors="coerce")
    bad = np.array(vals.isna(), dtype=bool)
    if integer:
        bad |= ~np.isclose(vals.fillna(0).to_numpy(np.float64) % 1, 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"expected {'an integer' if integer else 'a number'}, got "
                        f"{raw.iloc[row]!r}", path=str(path), line=first_line + row, field=col)
    return vals.to_numpy(np.float64)


def _ids(df: pd.DataFrame, col: str, path: Path, first_line: int) -> pd.Series:
    s = df[col].astype("string")
    bad = (s.isna() | (s.str.strip() == "")).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError("empty id", path=str(path), line=first_line + row, field=col)
    return s.str.strip()


def _epoch_seconds(dt: pd.Series) -> np.ndarray:
    """Unix seconds of a datetime column, whatever its unit (pandas 3 infers s/ms/us/ns)."""
    if dt.dt.tz is not None:
        dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
    return dt.to_numpy("datetime64[s]").astype(np.int64)


def _year_to_ts(years: pd.Series) -> np.ndarray:
    y = pd.to_numeric(years, errors="coerce")
    ok = y.between(1800, 2200)
    out = np.full(len(y), NO_TIME, dtype=np.int64)
    out[ok.to_numpy()] = _epoch_seconds(pd.to_datetime(y[ok].astype(int).astype(str) + "-01-01"))
    return out


def _read_delimited(path: Path, sep: str, names: list[str] | None,
                    encoding: str = "utf-8") -> pd.DataFrame:
    if not path.exists():
        raise DataError("file not found", path=str(path))
    try:
        return pd.read_csv(path, sep=sep, names=names, header=None if names else 0,
                           dtype=str, encoding=encoding, keep_default_na=False,
                           na_values=[""], engine="c")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse: {exc}", path=str(path)) from exc


def _frame(users: pd.Series, items: pd.Series, event: np.ndarray | int, value: np.ndarray,
           ts: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"user_id": users.to_numpy(object), "item_id": items.to_numpy(object),
                         "event": np.broadcast_to(np.asarray(event, np.int8), len(users)),
                         "value": value.astype(np.float32), "ts": ts.astype(np.int64)})


def _ratings(raw: pd.DataFrame, path: Path, first_line: int,
             cols: tuple[str, str, str, str]) -> pd.DataFrame:
    """Validated RATING events from a table whose (user, item, rating, time) columns are named."""
    _require(raw, list(cols), path)
    user, item, rating, ts = cols
    return _frame(_ids(raw, user, path, first_line), _ids(raw, item, path, first_line),
                  Event.RATING, _numeric(raw, rating, path, first_line),
                  _numeric(raw, ts, path, first_line, integer=True))


# ---- MovieLens 100K -------------------------------------------------------------------
def load_movielens_100k(directory: str | Path) -> Dataset:
    """MovieLens 100K as downloaded (u.data, u.item); ratings become RATING events."""
    d = Path(directory)
    path = d / "u.data"
    raw = _read_delimited(path, "\t", ["user_id", "item_id", "rating", "ts"])
    inter = _ratings(raw, path, 1, ("user_id", "item_id", "rating", "ts"))
    items = None
    if (d / "u.item").exists():
        genres = ML100K_GENRES
        if (d / "u.genre").exists():
            g = _read_delimited(d / "u.genre", "|", ["name", "code"], encoding="latin-1")
            genres = g["name"].tolist()
        cols = ["item_id", "title", "release", "video", "url", *genres]
        it = _read_delimited(d / "u.item", "|", cols, encoding="latin-1")
        flags = it[genres].fillna("0").to_numpy() == "1"
        items = pd.DataFrame({
            "item_id": it["item_id"].str.strip(),
            "title": it["title"].fillna("").str.replace(_YEAR, "", regex=True).str.strip(),
            "tags": ["|".join(np.array(genres)[row]) for row in flags],
            "published_at": _date_to_ts(it["release"]),
        })
    return Dataset.from_frame("movielens-100k", inter, items)


def _date_to_ts(col: pd.Series) -> np.ndarray:
    dt = pd.to_datetime(col, format="%d-%b-%Y", errors="coerce", utc=True)
    out = np.full(len(col), NO_TIME, dtype=np.int64)
    ok = dt.notna().to_numpy()
    out[ok] = _epoch_seconds(dt[ok])
    return out


# ---- MovieLens latest / 25M -----------------------------------------------------------
def load_movielens_csv(directory: str | Path) -> Dataset:
    """MovieLens latest / 20M / 25M / 32M (ratings.csv and, if present, movies.csv)."""
    d = Path(directory)
    path = d / "ratings.csv"
    if not path.exists():
        raise DataError("file not found", path=str(path))
    raw = pd.read_csv(path, dtype={"userId": str, "movieId": str})
    inter = _ratings(raw, path, 2, ("userId", "movieId", "rating", "timestamp"))
    items = None
    if (d / "movies.csv").exists():
        mv = pd.read_csv(d / "movies.csv", dtype=str, keep_default_na=False)
        _require(mv, ["movieId", "title", "genres"], d / "movies.csv")
        year = mv["title"].str.extract(_YEAR)[0]
        items = pd.DataFrame({
            "item_id": mv["movieId"].str.strip(),
            "title": mv["title"].str.replace(_YEAR, "", regex=True).str.strip(),
            "tags": mv["genres"].replace("(no genres listed)", ""),
            "published_at": _year_to_ts(year),
        })
    return Dataset.from_frame(f"movielens-{d.name}", inter, items)


# ---- RecBole atomic files ---------------------------------------------------------------
def _atomic(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file, dropping the ':type' suffix from its header."""
    df = _read_delimited(path, "\t", None)
    df.columns = [c.split(":", 1)[0] for c in df.columns]
    return df


def load_recbole(prefix: str | Path) -> Dataset:
    """RecBole atomic files: `<dir>/<name>.inter` and optional `<dir>/<name>.item`.

    Recognised .inter fields: user_id, item_id, rating (-> RATING events, else CLICK),
    timestamp. .item fields: item_id, movie_title/title, release_year, class/genre, creator.
    """
    p = Path(prefix)
    if p.is_dir():
        inters = sorted(p.glob("*.inter"))
        if not inters:
            raise DataError("no .inter file in directory", path=str(p))
        p = inters[0].with_suffix("")
    path = p.with_suffix(".inter")
    raw = _atomic(path)
    _require(raw, ["user_id", "item_id"], path)
    n = len(raw)
    if "rating" in raw.columns:
        event, value = Event.RATING, _numeric(raw, "rating", path, 2)
    else:
        event, value = Event.CLICK, np.ones(n)
    ts = (_numeric(raw, "timestamp", path, 2) if "timestamp" in raw.columns
          else np.arange(n, dtype=np.float64))
    inter = _frame(_ids(raw, "user_id", path, 2), _ids(raw, "item_id", path, 2), event, value,
                   ts.astype(np.int64))
    items = None
    item_path = p.with_suffix(".item")
    if item_path.exists():
        it = _atomic(item_path)
        _require(it, ["item_id"], item_path)
        title = next((c for c in ("movie_title", "title", "name") if c in it.columns), None)
        tags = next((c for c in ("class", "genre", "genres", "categories") if c in it.columns),
                    None)
        items = pd.DataFrame({
            "item_id": it["item_id"].str.strip(),
            "title": it[title] if title else it["item_id"],
            "tags": it[tags].fillna("").str.split().str.join("|") if tags else "",
            "creator_id": it["creator"] if "creator" in it.columns else "",
            "published_at": (_year_to_ts(it["release_year"]) if "release_year" in it.columns
                             else NO_TIME),
        })
    return Dataset.from_frame(p.name, inter, items)


# ---- generic format -----------------------------------------------------------------------
def _read_table(path: Path) -> tuple[pd.DataFrame, int]:
    """A CSV or Parquet table and the file line of its first data row (0 for Parquet)."""
    if not path.exists():
        raise DataError("file not found", path=str(path))
    if path.suffix == ".parquet":
        return pd.read_parquet(path), 0
    return _read_delimited(path, ",", None), 2


def _timestamps(df: pd.DataFrame, path: Path, first: int) -> np.ndarray:
    col = df["ts"]
    if pd.api.types.is_datetime64_any_dtype(col):
        return _epoch_seconds(col)
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        return _numeric(df, "ts", path, first, integer=True).astype(np.int64)
    parsed = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"expected unix seconds or an ISO-8601 time, got {col.iloc[row]!r}",
                        path=str(path), line=first + row, field="ts")
    return _epoch_seconds(parsed)


def load_generic(interactions: str | Path, items: str | Path | None = None) -> Dataset:
    """The generic format: user_id, item_id, event, value, ts (+ optional items table)."""
    path = Path(interactions)
    raw, first = _read_table(path)
    _require(raw, ["user_id", "item_id", "ts"], path)
    n = len(raw)
    if "event" in raw.columns:
        names = raw["event"].astype(str).str.strip().str.upper()
        known = names.isin([e.name for e in Event]).to_numpy()
        if not known.all():
            row = int(np.argmin(known))
            raise DataError(f"unknown event {raw['event'].iloc[row]!r} (allowed: "
                            f"{', '.join(e.name.lower() for e in Event)})",
                            path=str(path), line=first + row, field="event")
        event = names.map({e.name: int(e) for e in Event}).to_numpy(np.int8)
    else:
        event = np.full(n, Event.CLICK, dtype=np.int8)
    value = (_numeric(raw, "value", path, first) if "value" in raw.columns else np.ones(n))
    inter = _frame(_ids(raw, "user_id", path, first), _ids(raw, "item_id", path, first),
                   event, value, _timestamps(raw, path, first))
    table = None
    if items is not None:
        ipath = Path(items)
        table, ifirst = _read_table(ipath)
        _require(table, ["item_id"], ipath)
        table["item_id"] = _ids(table, "item_id", ipath, ifirst)
        if "published_at" in table.columns:
            tmp = table.rename(columns={"published_at": "ts"})
            has = tmp["ts"].notna() & (tmp["ts"].astype(str) != "")
            pub = np.full(len(table), NO_TIME, dtype=np.int64)
            if has.any():
                pub[has.to_numpy()] = _timestamps(tmp[has], ipath, ifirst)
            table["published_at"] = pub
        if "duration" in table.columns:
            table["duration"] = pd.to_numeric(table["duration"], errors="coerce")
    return Dataset.from_frame(path.stem, inter, table)


# ---- discovery ------------------------------------------------------------------------------
def builtin_movielens_100k_dir() -> Path:
    """The MovieLens-100K copy shipped in the `recbole` wheel (installed with --no-deps)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        raise DataError("the built-in MovieLens-100K needs the recbole wheel's data files: "
                        "pip install --no-deps recbole==1.2.1")
    return Path(spec.origin).parent / "dataset_example" / "ml-100k"


def load(spec: str | Path) -> Dataset:
    """Load by path or name: 'ml-100k' (built-in), 'synthetic[:k=v,...]', a directory with
    u.data / ratings.csv / *.inter / interactions.{csv,parquet}, or such a file."""
    s = str(spec)
    if s in ("ml-100k", "builtin:ml-100k"):
        return load_recbole(builtin_movielens_100k_dir() / "ml-100k")
    if s.startswith("synthetic"):
        from novarank.data.synthetic import SyntheticConfig, generate

        return generate(SyntheticConfig.parse(s)).dataset
    p = Path(s)
    if p.is_dir():
        if (p / "u.data").exists():
            return load_movielens_100k(p)
        if (p / "ratings.csv").exists():
            return load_movielens_csv(p)
        if any(p.glob("*.inter")):
            return load_recbole(p)
        for ext in (".parquet", ".csv"):
            if (p / f"interactions{ext}").exists():
                items = next((p / f"items{e}" for e in (".parquet", ".csv")
                              if (p / f"items{e}").exists()), None)
                return load_generic(p / f"interactions{ext}", items)
        raise DataError("no known data files (u.data, ratings.csv, *.inter, "
                        "interactions.csv/.parquet)", path=str(p))
    if p.suffix == ".inter":
        return load_recbole(p.with_suffix(""))
    if p.name == "u.data":
        return load_movielens_100k(p.parent)
    if p.name == "ratings.csv":
        return load_movielens_csv(p.parent)
    if p.suffix in (".csv", ".parquet"):
        return load_generic(p)
    raise DataError("unrecognised data path", path=s)
