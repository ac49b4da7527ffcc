# %% [markdown]
# An nbflow task (cell tags) reading a Ploomber task's product.

# %% tags=["reads:products/clean.csv", "reads:products/settings.json", "writes:products/report.txt"]
import csv
import json

threshold = json.load(open("products/settings.json"))["threshold"]
rows = list(csv.DictReader(open("products/clean.csv")))
above = sum(float(r["y"]) > threshold for r in rows)
open("products/report.txt", "w").write(f"{above} of {len(rows)} above {threshold}\n")
