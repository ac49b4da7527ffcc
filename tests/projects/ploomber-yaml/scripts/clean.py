# %% [markdown]
# Clean the raw data: drop rows without y.

# %%
import csv

# %% tags=["parameters"]
upstream = ["get"]
product = None

# %%
with open(upstream["get"]["data"]) as f:
    rows = [r for r in csv.DictReader(f) if r["y"]]
with open(product["data"], "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["x", "y"])
    writer.writeheader()
    writer.writerows(rows)
print(f"{len(rows)} clean rows")
