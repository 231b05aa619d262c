"""Git: the controller's cached source (fetch, read files at a commit, repair the cache),
the user's work tree (branches built on a private index), credentials from files. Rule:
the only package that imports GitPython; every git failure becomes a `core.errors` error
whose text carries no credential."""
