"""Fit the peer's model for bench_peer.py, in the peer's own environment (Cornac is not a
novarank dependency): EASE on a CSV of user,item,rating, saved where Cornac's serving
module loads it, with the training set (for `remove_seen`).

Run by bench_peer.py as: <peer python> peer_cornac.py TRAIN.csv OUT_DIR
"""

import csv
import sys

from cornac.data import Dataset
from cornac.models import EASE


def main() -> None:
    train, out = sys.argv[1], sys.argv[2]
    with open(train) as f:
        rows = [(u, i, float(r)) for u, i, r in csv.reader(f)]
    data = Dataset.from_uir(rows, seed=1)
    model = EASE(lamb=500, verbose=False)
    model.fit(data)
    print(model.save(out))  # the model file; its directory also gets the training set
    data.save(f"{out}/train.pkl")


if __name__ == "__main__":
    main()
