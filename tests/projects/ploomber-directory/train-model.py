# %% [markdown]
# "Train" a model: the mean number of actions by age band, written as JSON.

# %%
import csv
import json
from collections import Counter

# %% tags=["parameters"]
upstream = ["clean-users", "clean-actions"]
product = {"nb": "output/model-evaluation.ipynb", "model": "output/model.json"}

# %%
with open(upstream["clean-users"]["data"]) as f:
    ages = {r["id"]: int(r["age"]) for r in csv.DictReader(f)}
with open(upstream["clean-actions"]["data"]) as f:
    counts = Counter(r["id"] for r in csv.DictReader(f) if r["id"] in ages)

# %%
bands: dict[str, list[int]] = {}
for user, age in ages.items():
    bands.setdefault(f"{age // 20 * 20}s", []).append(counts.get(user, 0))
model = {band: sum(v) / len(v) for band, v in sorted(bands.items())}
model

# %%
with open(product["model"], "w") as f:
    json.dump({"users": len(ages), "bands": model}, f)
