from .cli import main

# guarded: Dask's worker processes are spawned and import the parent's __main__ module
if __name__ == "__main__":
    main()
