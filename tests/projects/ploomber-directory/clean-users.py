# %% [markdown]
# Drop users whose age cannot be right.

# %%
import csv

# %% tags=["parameters"]
upstream = ["get-users"]
product = {
    "nb": "output/clean-users.ipynb",
    "data": "output/clean-users.csv",
}

# %%
with open(upstream["get-users"]["data"]) as f:
    rows = [r for r in csv.DictReader(f) if int(r["age"]) >= 0]
with open(product["data"], "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["id", "age"])
    writer.writeheader()
    writer.writerows(rows)
print(f"{len(rows)} users kept")
