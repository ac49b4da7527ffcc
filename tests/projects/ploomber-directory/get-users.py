# %% [markdown]
# Make a table of users.

# %%
import csv
import random

# %% tags=["parameters"]
upstream = None
product = {"nb": "output/get-users.ipynb", "data": "output/users.csv"}
n_users = 40

# %%
rng = random.Random(1)
with open(product["data"], "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["id", "age"])
    for i in range(n_users):
        writer.writerow([i, rng.randint(-5, 80)])
