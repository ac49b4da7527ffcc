from .cli import main

if __name__ == "__main__":  # a process spawned by multiprocessing (a local Dask cluster's workers) imports this too
    main()
