# %%
import json

# %% tags=["parameters"]
upstream = None
product = None

# %%
with open(product["data"], "w") as f:
    json.dump({"threshold": 0.5}, f)
