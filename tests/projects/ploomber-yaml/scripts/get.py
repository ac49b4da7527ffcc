# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# Get raw data. The seed is read relative to the folder of pipeline.yaml, where Ploomber runs scripts.

import csv
import random

# + tags=["parameters"]
upstream = None
product = None
rows = 10
# -

seed = int(open("config/seed.txt").read())
rng = random.Random(seed)
with open(product["data"], "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["x", "y"])
    for i in range(rows):
        writer.writerow([i, rng.choice(["", str(rng.random())])])
