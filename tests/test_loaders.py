from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from novarank.data.events import Event
from novarank.data.loaders import (
    load,
    load_generic,
    load_movielens_100k,
    load_movielens_csv,
    load_recbole,
)
from novarank.errors import DataError


def test_builtin_movielens_100k_is_the_real_data_set():
    ds = load("ml-100k")
    assert (ds.n_users, ds.n_items, ds.n_events) == (943, 1682, 100_000)
    assert set(np.unique(ds.event)) == {Event.RATING}
    toy = ds.item_index["1"]
    assert ds.items.title[toy] == "Toy Story"
    assert "Animation" in ds.items.tags[toy].split("|")


def _write_ml100k(d: Path, data: str) -> Path:
    (d / "u.data").write_text(data)
    flags = "|".join(["0"] * 3 + ["1"] + ["0"] * 15)
    (d / "u.item").write_text(f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}\n"
                              f"2|GoldenEye (1995)|01-Jan-1995||http://x|{flags}\n",
                              encoding="latin-1")
    return d


def test_movielens_100k_files(tmp_path):
    ds = load_movielens_100k(_write_ml100k(tmp_path, "1\t1\t5\t881250949\n2\t2\t3\t891717742\n"))
    assert ds.n_events == 2 and ds.n_items == 2
    assert ds.items.title[ds.item_index["1"]] == "Toy Story"
    assert ds.items.tags[ds.item_index["1"]] == "Animation"
    assert ds.items.published_at[0] == 788918400  # 1995-01-01


def test_movielens_100k_bad_row_names_file_line_field(tmp_path):
    _write_ml100k(tmp_path, "1\t1\t5\t881250949\n2\t2\tfive\t891717742\n")
    with pytest.raises(DataError) as err:
        load_movielens_100k(tmp_path)
    msg = str(err.value)
    assert "u.data" in msg and "line 2" in msg and "'rating'" in msg


def test_movielens_csv(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.5,100\n"
                                          "1,20,3.0,200\n2,10,5.0,150\n")
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n10,"Heat (1995)",Action|Crime\n'
                                         "20,Up (2009),(no genres listed)\n")
    ds = load_movielens_csv(tmp_path)
    assert ds.n_users == 2 and ds.n_items == 2
    assert ds.items.tags[ds.item_index["10"]] == "Action|Crime"
    assert ds.items.tags[ds.item_index["20"]] == ""
    assert ds.items.title[ds.item_index["10"]] == "Heat"


def test_movielens_csv_bad_timestamp(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.5,100\n"
                                          "1,20,3.0,yesterday\n")
    with pytest.raises(DataError, match=r"line 3.*'timestamp'"):
        load_movielens_csv(tmp_path)


def test_recbole_atomic_files(tmp_path):
    (tmp_path / "toy.inter").write_text("user_id:token\titem_id:token\trating:float\t"
                                        "timestamp:float\nu1\ti1\t4\t10\nu1\ti2\t2\t20\n")
    (tmp_path / "toy.item").write_text("item_id:token\tmovie_title:token_seq\t"
                                       "release_year:token\tclass:token_seq\n"
                                       "i1\tAlpha\t1999\tDrama War\ni2\tBeta\t2001\tComedy\n")
    ds = load_recbole(tmp_path / "toy")
    assert ds.n_events == 2
    assert ds.items.tags[ds.item_index["i1"]] == "Drama|War"
    assert ds.items.title[ds.item_index["i2"]] == "Beta"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generic_format(tmp_path, fmt):
    inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"],
                          "event": ["watch", "like", "skip"], "value": [0.5, 1, 1],
                          "ts": [30, 10, 20]})
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"],
                          "creator_id": ["c1", "c1", "c2"], "tags": ["a|b", "b", ""],
                          "published_at": [0, 5, 7], "duration": [60.0, 30.0, 90.0]})
    if fmt == "csv":
        inter.to_csv(tmp_path / "interactions.csv", index=False)
        items.to_csv(tmp_path / "items.csv", index=False)
    else:
        inter.to_parquet(tmp_path / "interactions.parquet")
        items.to_parquet(tmp_path / "items.parquet")
    ds = load(tmp_path)
    assert ds.n_items == 3  # z has no interactions but stays in the catalog
    a = ds.user_index["a"]
    rows = ds.user == a
    assert list(ds.ts[rows]) == [10, 30]  # sorted by time within user
    assert ds.items.creator[ds.item_index["y"]] == "c1"
    assert set(ds.event) == {Event.WATCH, Event.LIKE, Event.SKIP}


def test_generic_unknown_event_is_named(tmp_path):
    (tmp_path / "i.csv").write_text("user_id,item_id,event,value,ts\na,x,watch,1,1\n"
                                    "a,y,teleport,1,2\n")
    with pytest.raises(DataError) as err:
        load_generic(tmp_path / "i.csv")
    assert "line 3" in str(err.value) and "'event'" in str(err.value)
    assert "teleport" in str(err.value)


def test_generic_missing_column(tmp_path):
    (tmp_path / "i.csv").write_text("user_id,item,ts\na,x,1\n")
    with pytest.raises(DataError, match="item_id"):
        load_generic(tmp_path / "i.csv")


def test_generic_empty_user_id(tmp_path):
    (tmp_path / "i.csv").write_text("user_id,item_id,ts\na,x,1\n,y,2\n")
    with pytest.raises(DataError, match=r"line 3.*'user_id'"):
        load_generic(tmp_path / "i.csv")


def test_unknown_path(tmp_path):
    with pytest.raises(DataError, match="no known data files"):
        load(tmp_path)
