# %% [markdown]
# Make a table of actions, several per user.

# %%
import csv
import random

# %% tags=["parameters"]
upstream = None
product = {"nb": "output/get-actions.ipynb", "data": "output/actions.csv"}

# %%
rng = random.Random(2)
with open(product["data"], "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["id", "action"])
    for i in range(200):
        writer.writerow([rng.randrange(40), rng.choice(["click", "view", "buy"])])
