# %% [markdown]
# Keep the actions we model.

# %%
import csv

# %% tags=["parameters"]
upstream = ["get-actions"]
product = {"nb": "output/clean-actions.ipynb", "data": "output/clean-actions.csv"}

# %%
with open(upstream["get-actions"]["data"]) as f:
    rows = [r for r in csv.DictReader(f) if r["action"] in ("click", "buy")]
with open(product["data"], "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["id", "action"])
    writer.writeheader()
    writer.writerows(rows)
