"""One cog per feature; each module has a tiny `setup(bot)`."""
